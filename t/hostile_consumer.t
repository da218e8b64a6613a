# Hostile input at the consumer (issue 6): queue entries that are not
# records (pushed straight into {P}:queue), platform answers that are junk
# on the routes whose body the providers read, a customer map value that is
# a nesting bomb, and a Stripe API that hangs. Each ends as a dead letter or
# a retry; the consumer neither crashes nor stops serving the other jobs.
# (t/consumer_faults.t covers junk answers to Kit's GET /tags.)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use StripeSync::Test;
use StripeSync::Fake;

require_module();
require_tool();

my $s = StripeSync::Fake::Stack->new;
my $r = $s->redis;
my $kit = StripeSync::Fake->new(api => 'kit');
my $stripe = StripeSync::Fake->new(api => 'stripe', seed => {
    customers => [ { id => 'cus_HANG', object => 'customer',
                     email => 'hang@example.org', name => 'Hang Later' } ] });

my $dir = temp_dir('hostile-consumer');
my %stripe_conf = (api_base => $stripe->url, timeout => 2,
    api_key_file => write_secret($dir, 'stripe.key', $stripe->key . "\n"));
my @rules = (
    { on => 'purchase', tag => ['Buyer'] },
    { on => 'subscription_started', tag => ['Member'] },
);
my %conf = (provider => $kit, stripe => \%stripe_conf, rules => \@rules,
            provider_extra => { timeout => 2, rate => 50, burst => 50 });
my $c = $s->consumer(%conf);

sub settle {
    my ($what, $t) = @_;
    ok($s->idle(tmo($t // 20)), "$what: the queue drained")
        or diag("consumer log:\n" . $c->output);
}

sub purchase {
    my ($n, %o) = @_;
    return $s->send('invoice.paid', $s->invoice(id => "in_$n",
        customer => "cus_$n", email => lc("$n\@example.org"), name => "$n Buyer",
        billing_reason => 'subscription_create', subscription => "sub_$n"), %o);
}

sub tagged {
    my ($k, $email, $since) = @_;
    return scalar grep { ($_->{json}{email_address} // '') eq $email
                         && ($_->{status} // 0) =~ /^20[01]$/ }
        $k->requests(since => $since, method => 'POST', route => qr{^/tags/\d+/subscribers$});
}

# the errors of the dead letters whose record's customer id matches
sub letters_of {
    my ($re) = @_;
    return map { $_->{error} }
           grep { ref $_->{record} eq 'HASH' && ref $_->{record}{customer} eq 'HASH'
                  && ($_->{record}{customer}{id} // '') =~ $re } @{ $s->dead };
}

sub letter_with {
    my ($re) = @_;
    return grep { ($_->{error} // '') =~ $re } @{ $s->dead };
}

# ---------------------------------------------------- bad queue entries ---

subtest 'queue entries that are not records: dead letters, the queue goes on' => sub {
    my $q = $s->key('queue');
    my $deep = '{"v":1,"id":"evt_deep","action":"purchase","x":'
             . ('[' x 400_000) . (']' x 400_000) . '}';
    my @bad = (
        [ 'not JSON',         'this is not JSON {',
                              qr/^queue entry is not JSON: lexical error: invalid string in json text\.$/ ],
        [ 'schema v2',        '{"v":2,"id":"evt_v2","action":"purchase"}',
                              qr/^queue entry has schema version 2, this consumer reads 1$/ ],
        [ 'a 2 MB entry',     '{"v":1,"id":"evt_2mb","action":"purchase","pad":"'
                              . ('x' x (2 * 1024 * 1024)) . '"}',
                              qr/^queue entry is 2097\d+ bytes, over the 1048576-byte limit$/ ],
        [ 'an array',         '[{"v":1,"id":"evt_arr","action":"purchase"}]',
                              qr/^queue entry is not a JSON object$/ ],
        [ 'an empty string',  '',                  qr/^queue entry is not JSON: parse error: premature EOF$/ ],
        [ 'a nesting bomb',   $deep,                      qr/^queue entry nests deeper than 64 levels$/ ],
        [ 'NUL bytes',        "{\"v\":1,\"id\":\"evt_nul\0\",\"action\":\"purchase\"}",
                              qr/^queue entry contains a NUL byte$/ ],
        [ 'not UTF-8',        "{\"v\":1,\"id\":\"evt_\xff\",\"action\":\"purchase\"}",
                              qr/^queue entry is not JSON: lexical error: invalid bytes in UTF8 string\.$/ ],
        [ 'no action',        '{"v":1,"id":"evt_noaction"}',           qr/^queue entry evt_noaction has no "action"$/ ],
        # yajl alone takes a value followed by an unterminated string
        [ 'trailing garbage', '{"v":1,"id":"evt_tail","action":"purchase"}"junk',
                              qr/^queue entry is not JSON: trailing garbage$/ ],
        [ 'v as a string',    '{"v":"1","id":"evt_v1s","action":"purchase"}',
                              qr/^queue entry has schema version "1", this consumer reads 1$/ ],
    );
    my $d0 = scalar @{ $s->dead };
    my $mark = $kit->mark;
    my $t0 = time;
    $r->cmd('LPUSH', $q, $_->[1]) for @bad;     # taken first (FIFO)
    my $good = purchase('AFTERBAD');
    settle('bad entries, then a good one', 30);
    ok(time - $t0 < tmo(10), sprintf('all handled in %.1f s', time - $t0));
    ok($c->alive, 'the consumer is alive');
    is(tagged($kit, 'afterbad@example.org', $mark), 1, 'the valid job after them was done');
    my @dead = @{ $s->dead };
    is(scalar(@dead) - $d0, scalar @bad, scalar(@bad) . ' new dead letters');
    for my $b (@bad) {
        my ($what, $raw, $want) = @$b;
        my @l = letter_with($want);
        is(scalar @l, 1, "$what: one dead letter: " . ($l[0]{error} // 'none')) or next;
        is($l[0]{attempts}, 0, "$what: attempts 0");
        if (exists $l[0]{record}) {
            is(json_encode($l[0]{record}), json_encode(json_decode($raw)),
               "$what: the entry is kept as its record");
        } else {
            is($l[0]{raw_bytes}, length $raw, "$what: raw_bytes " . length $raw);
            ok(length($l[0]{raw}) <= 64 * 1024, "$what: raw cut to 64 KB at most");
        }
    }
    my @proc = @{ $r->cmd('KEYS', $s->key('processing:*')) || [] };
    is(scalar(grep { $r->cmd('LLEN', $_) } @proc), 0, 'nothing left in a processing list');
    ok(length($c->output) < 200_000, 'the log did not copy the entries ('
                                     . length($c->output) . ' bytes)');
    like($c->output, qr/outcome=dead attempt=0 .*error="queue entry nests deeper/,
         'the log has the dead letters');
};

# -------------------------------------------------- junk customer map ---

subtest 'a nesting bomb in the customer map: ignored, not a crash' => sub {
    $r->cmd('HSET', $s->key('customers'), 'cus_MAPBOMB', '[' x 300_000 . ']' x 300_000);
    $r->cmd('HSET', $s->key('customers'), 'cus_MAPJUNK', "not json\xff");
    $stripe->seed(customers => [
        { id => 'cus_MAPBOMB', object => 'customer', email => 'mapbomb@example.org' },
        { id => 'cus_MAPJUNK', object => 'customer', email => 'mapjunk@example.org' } ]);
    my $mark = $kit->mark;
    for my $n (qw(MAPBOMB MAPJUNK)) {
        $s->send('customer.subscription.created',
                 $s->subscription(id => "sub_$n", customer => "cus_$n"));
    }
    settle('map junk');
    ok($c->alive, 'the consumer is alive');
    is(tagged($kit, lc("$_\@example.org"), $mark), 1, "$_: email from the Stripe API instead")
        for qw(mapbomb mapjunk);
};

# --------------------------------------------------- a Stripe API hang ---

subtest 'the Stripe API hangs: timed out after stripe.timeout, retried; others go on' => sub {
    $stripe->fault(method => 'GET', route => '/v1/customers/cus_HANG', hang => 30);
    my $smark = $stripe->mark;
    my $kmark = $kit->mark;
    my $t0 = time;
    $s->send('customer.subscription.created',
             $s->subscription(id => 'sub_HANG', customer => 'cus_HANG'));
    ok(wait_until(sub { @{ $stripe->held } == 1 }, tmo(10)), 'GET /v1/customers/cus_HANG is held')
        or diag $c->output;
    # meanwhile, other customers' jobs are served at once
    my $t1 = time;
    purchase("MEANWHILE$_") for 1 .. 3;
    ok(wait_until(sub { 3 == grep { tagged($kit, "meanwhile$_\@example.org", $kmark) } 1 .. 3 },
                  tmo(10), 0.05),
       'three other jobs were done meanwhile');
    my $during = time - $t1;
    ok(@{ $stripe->held } == 1 || $during < 1.8,
       sprintf('... in %.2f s, while the Stripe request hung', $during));
    settle('after the hang', 20);
    my @get = $stripe->requests(all => 1, since => $smark, route => '/v1/customers/cus_HANG');
    is_deeply([ map { $_->{dropped} ? 'dropped' : $_->{status} } @get ], [ 'dropped', 200 ],
              'the hung request was abandoned, the retry answered')
        or diag explain \@get;
    if (@get == 2) {
        my $held = ($get[0]{done_t} - $get[0]{t}) / 1000;
        ok($held >= 1.8 && $held < tmo(4), sprintf('abandoned after %.2f s (stripe.timeout = 2)', $held));
    }
    is(tagged($kit, 'hang@example.org', $kmark), 1, 'the job was then done');
    like($c->output, qr/event=\S+ action=subscription_started customer=cus_HANG .*outcome=retry attempt=1 .*error="[^"]*(?:[Tt]imeout|timed out)/,
         'the log says it timed out and is retried');
    ok(time - $t0 < tmo(15), sprintf('%.1f s in all', time - $t0));
    ok($c->alive, 'the consumer is alive');
};

subtest 'the Stripe API answers junk: retried, then the email is found' => sub {
    $stripe->seed(customers => [ { id => 'cus_SJUNK', object => 'customer',
                                   email => 'sjunk@example.org' } ]);
    # four: the fifth attempt (retry.max_attempts) gets the customer
    my @kinds = ([kind => 'nonjson'], [kind => 'huge'], [kind => 'empty'],
                 [status => 200, name => 'deep', body => '[' x 100_000 . ']' x 100_000]);
    $stripe->fault(method => 'GET', route => '/v1/customers/cus_SJUNK', @$_) for @kinds;
    my $kmark = $kit->mark;
    $s->send('customer.subscription.created',
             $s->subscription(id => 'sub_SJUNK', customer => 'cus_SJUNK'));
    settle('Stripe junk', 30);
    my @get = $stripe->requests(all => 1, route => '/v1/customers/cus_SJUNK');
    is(scalar(grep { $_->{fault} } @get), scalar @kinds, 'each junk answer was served once')
        or diag explain [ map { $_->{fault} } @get ];
    is(tagged($kit, 'sjunk@example.org', $kmark), 1, 'then the job was done')
        or diag explain [ letters_of(qr/^cus_SJUNK$/) ];
    like($c->output, qr/customer=cus_SJUNK .*outcome=retry .*response is not JSON we can read/,
         'logged as retries');
    ok($c->alive, 'the consumer is alive');
};

# ------------------------------------------------- junk answers at Kit ---

# The routes whose body the Kit provider reads, besides GET /tags: creating
# a tag, and finding the subscriber to untag.
subtest 'Kit: junk answers to POST /tags and GET /subscribers are retried' => sub {
    my @kinds = ([kind => 'nonjson'], [kind => 'truncated'], [kind => 'huge'],
                 [kind => 'empty'],
                 [status => 200, name => 'deep', body => '[' x 100_000 . ']' x 100_000],
                 [status => 201, name => 'NUL in the id', body => '{"tag":{"id":"12\u0000"}}']);
    $kit->fault(method => 'POST', route => '/tags', @$_) for @kinds;
    my $mark = $kit->mark;
    push @rules, { on => 'subscription_cancelled', untag => ['Member'] },
                 { on => 'refund', tag => ['JunkTag'] };
    $c->stop(sig => 'TERM', timeout => tmo(10));
    $c = $s->consumer(%conf, log => $c->{log},
                      retry => { max_attempts => 10, base_delay => 1, max_delay => 1 });
    $s->send('charge.refunded', {
        id => 'ch_JUNK', object => 'charge', customer => 'cus_JUNK', amount => 500,
        amount_refunded => 500, currency => 'usd', refunded => JSON::PP::true,
        billing_details => { email => 'junk@example.org' }, metadata => {} });
    settle('junk on POST /tags', 40);
    my @used = grep { $_->{fault} } $kit->requests(all => 1, since => $mark,
                                                   method => 'POST', route => '/tags');
    is(scalar @used, scalar @kinds, 'each junk answer was served once')
        or diag explain [ map { $_->{fault} } @used ];
    is(tagged($kit, 'junk@example.org', $mark), 1, 'then the tag was created and applied');

    # untag: GET /subscribers?email_address= is read for the subscriber id
    $kit->fault(method => 'GET', route => '/subscribers', @$_) for @kinds[0 .. 4];
    $mark = $kit->mark;
    $s->send('customer.subscription.deleted',
             $s->subscription(id => 'sub_MEANWHILE1', customer => 'cus_MEANWHILE1',
                              status => 'canceled'));
    settle('junk on GET /subscribers', 40);
    @used = grep { $_->{fault} } $kit->requests(all => 1, since => $mark,
                                                method => 'GET', route => '/subscribers');
    is(scalar @used, 5, 'each junk answer was served once');
    ok(scalar($kit->requests(since => $mark, method => 'DELETE',
                             route => qr{^/tags/\d+/subscribers/\d+$})),
       'then the untag went through');
    ok($c->alive, 'the consumer is alive');
    is_deeply([ letters_of(qr/^cus_(?:JUNK|MEANWHILE1)$/) ], [], 'no dead letter');
};

# --------------------------------------------------- a hostile reload ---

# libconfig 1.5 exit()s the process when it reads a directory; the consumer
# looks at every @include first
subtest 'SIGHUP with an @include of a directory: refused, the consumer lives' => sub {
    my $file = $c->{conf};
    my $good = slurp($file);
    for my $inc ('.', '', 'no-such-dir/..') {
        my $before = length $c->output;
        spew($file, $good . qq(\n\@include "$inc"\n));
        kill 'HUP', $c->pid;
        ok(wait_until(sub { substr($c->output, $before) =~ /reload: .*keeping the running configuration/ },
                      tmo(10)), "\@include \"$inc\": the reload is refused")
            or diag substr($c->output, $before);
        like(substr($c->output, $before), qr/\@include "\Q$inc\E" is a directory, not a file/,
             'saying why') if $inc ne 'no-such-dir/..';
        ok($c->alive, 'the consumer is alive');
    }
    spew($file, $good);
    my $mark = $kit->mark;
    purchase('AFTERHUP');
    settle('after the refused reloads');
    is(tagged($kit, 'afterhup@example.org', $mark), 1, 'and still working');
};

$c->stop(sig => 'TERM', timeout => tmo(10));

# ------------------------------- junk answers at ActiveCampaign, Klaviyo ---

for my $api (qw(activecampaign klaviyo)) {
    subtest "$api: junk answers to the upsert are retried, applied once" => sub {
        my $f = StripeSync::Fake->new(api => $api);
        my ($method, $route) = $api eq 'activecampaign'
            ? ('POST', '/contact/sync') : ('POST', '/profile-import');
        my @kinds = ([kind => 'nonjson'], [kind => 'truncated'], [kind => 'huge'],
                     [status => 200, name => 'deep', body => '[' x 100_000 . ']' x 100_000],
                     [status => 200, name => 'odd shape', body => '{"data":null,"contact":17}']);
        $f->fault(method => $method, route => $route, @$_) for @kinds;
        my $cc = $s->consumer(provider => $f, name => "consumer-$api",
            rules => [ { on => 'purchase', tag => ['Buyer'] } ],
            provider_extra => { timeout => 2, rate => 50, burst => 50 },
            retry => { max_attempts => 10, base_delay => 1, max_delay => 1 });
        my $n = uc substr($api, 0, 2) . 'JUNK';
        purchase($n);
        ok($s->idle(tmo(40)), "$api: the queue drained") or diag $cc->output;
        my @used = grep { $_->{fault} } $f->requests(all => 1, method => $method, route => $route);
        is(scalar @used, scalar @kinds, "$api: each junk answer was served once")
            or diag explain [ map { $_->{fault} } @used ];
        my @ok = grep { !$_->{fault} && ($_->{status} // 0) =~ /^20/ }
                 $f->requests(method => $method, route => $route);
        is(scalar @ok, 1, "$api: then one upsert went through");
        is_deeply([ letters_of(qr/^cus_$n$/) ], [], "$api: no dead letter");
        like($cc->output, qr/outcome=retry/, "$api: retries logged");
        like($cc->output, qr/outcome=done/, "$api: then done");
        ok($cc->alive, "$api: the consumer is alive");
        is($cc->stop(sig => 'TERM', timeout => tmo(10)), 0, "$api: SIGTERM: exit 0");
        $f->stop;
    };
}

$kit->no_violations;
finish();
