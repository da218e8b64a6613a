# stripe-sync reconcile (SPEC 6): list the (fake) Stripe API's events of a
# window and enqueue exactly those the dedupe set has not seen, through the
# webhook's own enqueue script. Events are marked seen the real way, by
# sending them signed through nginx, and by setting seen keys.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP ();
use Test::More;
use Time::HiRes qw(time);
use StripeSync::Test;
use StripeSync::Fake;

require_module();
require_tool();

my $S = 'StripeSync::Fake::Stack';
my $NOW = int time;
my $s = StripeSync::Fake::Stack->new;
my $redis = $s->redis;
my $stripe = StripeSync::Fake->new(api => 'stripe', page_size_cap => 2);

sub config {
    my (%o) = @_;
    my $dir = temp_dir('reconcile');
    my $fake = $o{stripe} // $stripe;
    return spew("$dir/stripe-sync.conf", libconfig({
        redis => $o{redis} // '127.0.0.1:' . $redis->port,
        prefix => $s->prefix,
        stripe => { api_base => $fake->url, timeout => 5,
                    api_key_file => write_secret($dir, 'stripe.key', $fake->key . "\n") },
    }));
}

sub reconcile {
    my ($conf, @args) = @_;
    return run_tool('reconcile', '-c', $conf, @args, { timeout => tmo(50) });
}

sub queue_ids { [ map { $_->{id} } @{ $redis->queue(prefix => $s->prefix) } ] }

sub counts {
    my ($out) = @_;
    my ($l) = $out =~ /^(reconcile.*: events since .*)$/m;
    return $l // '(no summary line)';
}

# The events, as Stripe's list shows them: (id, type, object, age in s).
my %OBJ = (
    in_r1 => $S->invoice(id => 'in_r1', customer => 'cus_1', email => 'one@example.org',
                         billing_reason => 'subscription_create'),
    in_r2 => $S->invoice(id => 'in_r2', customer => 'cus_2', status => 'open',
                         attempt_count => 1),
    cs_r3 => $S->checkout_session(id => 'cs_r3', customer => 'cus_3'),
    sub_r4 => $S->subscription(id => 'sub_r4', customer => 'cus_4'),
    in_r5 => $S->invoice(id => 'in_r5', customer => 'cus_5', email => 'five@example.org'),
    ch_r6 => { id => 'ch_r6', object => 'charge', customer => 'cus_6', amount => 5000,
               amount_refunded => 5000, currency => 'usd', refunded => JSON::PP::true,
               billing_details => { email => 'six@example.org' }, metadata => {} },
    sub_r7 => $S->subscription(id => 'sub_r7', customer => 'cus_7', status => 'canceled'),
    prod_9 => { id => 'prod_9', object => 'product', name => 'Course' },
    in_r10 => $S->invoice(id => 'in_r10', customer => 'cus_10'),
    cs_r11 => $S->checkout_session(id => 'cs_r11', customer => 'cus_11'),
);
my @EVENTS = (
    [ evt_r1  => 'invoice.paid',                  'in_r1',  7200 ],
    [ evt_r2  => 'invoice.payment_failed',        'in_r2',  7100 ],
    [ evt_r3  => 'checkout.session.completed',    'cs_r3',  7000 ],
    [ evt_r4  => 'customer.subscription.created', 'sub_r4', 6900 ],
    [ evt_r5  => 'invoice.paid',                  'in_r5',  6800 ],
    [ evt_r6  => 'charge.refunded',               'ch_r6',  6700 ],
    [ evt_r7  => 'customer.subscription.deleted', 'sub_r7', 6600 ],
    [ evt_r8  => 'invoice.payment_succeeded',     'in_r1',  6500 ],   # in_r1 again
    [ evt_r9  => 'product.created',               'prod_9', 6400 ],
    [ evt_r10 => 'invoice.paid',                  'in_r10', 5 * 86400 ],
    [ evt_r11 => 'checkout.session.completed',    'cs_r11', 6300 ],
);
my %UNDELIVERED = (evt_r11 => 1);

sub event_json {
    my ($id, $type, $obj, $age) = @_;
    return make_event(id => $id, type => $type, object => $OBJ{$obj},
                      created => $NOW - $age, livemode => 0);
}

$stripe->seed(events => [ map {
    my $e = JSON::PP->new->decode(event_json(@$_));
    $e->{_delivery_success} = 0 if $UNDELIVERED{ $_->[0] };
    $e;
} @EVENTS ]);

# What the webhook did get: three through nginx, one seen key set by hand.
for my $e (@EVENTS[0 .. 2]) {
    my ($id, $type, $obj, $age) = @$e;
    $s->send($type, $OBJ{$obj}, id => $id, created => $NOW - $age, livemode => 0);
}
$redis->cmd('SET', $s->key('seen:evt_r4'), '1', 'EX', 3600);
my @WEBHOOK = qw(evt_r1 evt_r2 evt_r3);
is_deeply(queue_ids(), \@WEBHOOK, 'the webhook queued three events');

my $conf = config();

subtest 'usage and refused windows' => sub {
    my $mark = $stripe->mark;
    my ($rc, $out) = reconcile($conf, '--help');
    is($rc, 0, '--help: 0');
    like($out, qr/usage: stripe-sync reconcile .*--since WINDOW/s, 'usage');

    ($rc, $out) = reconcile($conf, '--since', '40d');
    is($rc, 2, 'a 40-day window: refused (2)');
    like($out, qr/--since "40d" is longer than 30 days: Stripe keeps events for 30 days only/,
         'clearly');
    ($rc, $out) = reconcile($conf, '--since', '2592001');
    is($rc, 2, '30 days and a second: refused');
    ($rc, $out) = reconcile($conf, '--since', 'yesterday');
    is($rc, 2, 'not a window: 2');
    like($out, qr/--since "yesterday" is not a window such as 72h, 3d, 30m/, 'says what it takes');
    ($rc, $out) = reconcile($conf, 'extra');
    is($rc, 2, 'an argument: 2');
    is($stripe->count(since => $mark), 0, 'not one request to Stripe');
    is_deeply(queue_ids(), \@WEBHOOK, 'nothing queued');
};

subtest '--dry-run and --undelivered: what would be enqueued' => sub {
    my $mark = $stripe->mark;
    my ($rc, $out) = reconcile($conf, '--since', '72h', '--dry-run');
    is($rc, 0, 'exit 0') or diag $out;
    my @would = $out =~ /^would enqueue (\S+)/mg;
    is_deeply(\@would, [qw(evt_r11 evt_r7 evt_r6 evt_r5)], 'the four missing, newest first');
    like($out, qr/^would enqueue evt_r6 charge\.refunded refund cus_6 six\@example\.org$/m,
         'a line: event, type, action, customer, email');
    like(counts($out), qr/listed 10 \(5 page\(s\)\), already seen 4, would enqueue 4, duplicate facts 1, ignored 1$/,
         'the counts');
    is_deeply(queue_ids(), \@WEBHOOK, 'nothing queued');
    is($redis->cmd('EXISTS', $s->key('seen:evt_r5')), 0, 'no seen key written');

    my @r = $stripe->requests(since => $mark);
    is(scalar @r, 5, '5 pages of 2');
    my $gte = $r[0]{params}{'created[gte]'};
    ok(abs($gte - ($NOW - 72 * 3600)) < 60, "created[gte]=$gte: 72 hours back");
    ok(!(grep { ($_->{params}{'created[gte]'} // '') ne $gte } @r), 'on every page');
    is_deeply([ map { $_->{params}{limit} } @r ], [ (100) x 5 ], 'limit=100');
    is_deeply([ map { $_->{params}{starting_after} } @r[1 .. 4] ],
              [qw(evt_r9 evt_r7 evt_r5 evt_r3)], 'starting_after the last of each page');

    $mark = $stripe->mark;
    ($rc, $out) = reconcile($conf, '--since', '3d', '--undelivered', '--dry-run');
    is($rc, 0, '--undelivered: exit 0') or diag $out;
    ($r[0]) = $stripe->requests(since => $mark);
    is($r[0]{params}{delivery_success}, 'false', 'asks for delivery_success=false');
    like(counts($out), qr/ not delivered: listed 1 .*would enqueue 1/, 'the one undelivered event');
};

subtest 'enqueues exactly the unseen events, once' => sub {
    my ($rc, $out) = reconcile($conf, '--since', '72h');
    is($rc, 0, 'exit 0') or diag $out;
    like(counts($out), qr/^reconcile: events since \d{4}-\d\d-\d\dT[\d:]+Z: listed 10 \(5 page\(s\)\), already seen 4, enqueued 4, duplicate facts 1, ignored 1$/,
         'listed 10: 4 seen, 4 enqueued, 1 fact already queued, 1 ignored');
    like($out, qr/^enqueued evt_r5 invoice\.paid renewal cus_5 five\@example\.org$/m,
         'a line per enqueued event');
    is_deeply(queue_ids(), [ @WEBHOOK, qw(evt_r11 evt_r7 evt_r6 evt_r5) ],
              'the webhook\'s three, then the four missing');

    my ($r5) = grep { $_->{id} eq 'evt_r5' } @{ $redis->queue };
    is($r5->{action}, 'renewal', 'normalized: a renewal');
    is($r5->{type}, 'invoice.paid', 'the type');
    is($r5->{created}, $NOW - 6800, "the event's created");
    is($r5->{livemode}, 0, 'livemode');
    is($r5->{api_version}, '2025-03-31.basil', "the event's api_version");
    is($r5->{subscription}, 'sub_A', 'facts from the basil payload');
    is($redis->cmd('HGET', $s->key('customers'), 'cus_5'), '{"email":"five@example.org"}',
       'the customer map learnt the email');
    ok($redis->cmd('TTL', $s->key('seen:evt_r5')) > 29 * 86400, 'seen for 30 days');
    is($redis->cmd('EXISTS', $s->key('seen:evt_r10')), 0, 'the 5-day-old event: not listed');

    ($rc, $out) = reconcile($conf, '--since', '72h');
    is($rc, 0, 'again: exit 0') or diag $out;
    like(counts($out), qr/listed 10 \(5 page\(s\)\), already seen 9, enqueued 0, duplicate facts 0, ignored 1/,
         'again: nothing enqueued');
    unlike($out, qr/^enqueued/m, 'no line');
    is(scalar @{ queue_ids() }, 7, 'still seven');

    ($rc, $out) = reconcile($conf, '--since', '6d');
    is($rc, 0, '--since 6d: exit 0') or diag $out;
    like(counts($out), qr/listed 11 .*enqueued 1,/, 'the older event now');
    is(queue_ids()->[-1], 'evt_r10', 'queued');
};

subtest 'a 429, then success; a failure is exit 1' => sub {
    my $more = StripeSync::Fake->new(api => 'stripe', page_size_cap => 2);
    $more->seed(events => [ map {
        JSON::PP->new->decode(make_event(id => sprintf('evt_m%02d', $_), type => 'customer.created',
            object => { id => "cus_m$_", object => 'customer', email => "m$_\@example.org" },
            created => $NOW - 600 + $_))
    } 1 .. 60 ]);
    my $c2 = config(stripe => $more);

    $more->fault(method => 'GET', route => '/v1/events', skip => 3, status => 429, retry_after => 1);
    my $t0 = time;
    my ($rc, $out) = reconcile($c2, '--since', '1h');
    is($rc, 0, 'exit 0') or diag $out;
    like($out, qr{stripe: GET /v1/events: HTTP 429: injected 429; retrying in 1\.\d s}, 'the retry said');
    like(counts($out), qr/listed 60 \(30 page\(s\)\), already seen 0, enqueued 60/, 'all sixty');
    my @r = $more->requests;
    is(scalar @r, 31, '30 pages and one retry');
    is($r[4]{params}{starting_after}, $r[3]{params}{starting_after}, 'the same page again');
    ok($r[4]{t} - $r[3]{done_t} >= 950, 'after Retry-After');

    my @t = map { $_->{t} / 1000 } @r;
    my @over;
    for my $i (0 .. $#t) {
        for my $j ($i + 1 .. $#t) {
            push @over, sprintf('requests %d..%d: %d in %.3f s', $i, $j, $j - $i + 1,
                                $t[$j] - $t[$i]) if $j - $i + 1 > 2 + 25 * ($t[$j] - $t[$i]);
        }
    }
    ok(!@over, 'never faster than 25 requests a second') or diag join "\n", @over[0 .. 4];

    $more->fault(method => 'GET', route => '/v1/events', skip => 1, times => -1, status => 503);
    ($rc, $out) = reconcile($c2, '--since', '1h');
    is($rc, 1, 'Stripe keeps answering 503: exit 1');
    like($out, qr{reconcile: GET /v1/events: HTTP 503: injected 503 \(gave up after 5 attempts\)}, 'says why');
    like(counts($out), qr/listed 2 .*already seen 2, enqueued 0.* \(failed\)$/, 'the counts so far, "failed"');
    $more->clear_faults;

    ($rc, $out) = reconcile(config(redis => '127.0.0.1:' . free_port()), '--since', '1h');
    is($rc, 1, 'no Redis: exit 1');
    like($out, qr/stripe-sync reconcile: redis 127\.0\.0\.1:\d+: .*refused/i, 'says so');
};

finish();
