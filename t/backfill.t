# stripe-sync backfill (SPEC 6): past purchasers and active subscriptions
# from the (fake) Stripe API into the queue, through the normalizer and the
# webhook's own enqueue script. Pagination, 429s, resuming from the
# checkpoint, idempotent reruns, --dry-run, --since, --only, the request
# rate, and a purchase a signed webhook already queued not queued again.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP ();
use Test::More;
use Time::HiRes qw(time);
use StripeSync::Test;
use StripeSync::Fake;

require_tool();

my $S = 'StripeSync::Fake::Stack';    # its object builders
my $NOW = int time;
my $OLD = $NOW - 100 * 86400;          # before any --since below

my $redis = start_redis();
my $stripe = StripeSync::Fake->new(api => 'stripe', page_size_cap => 2);

# Seven of each, newest first by created; plus what the filters leave out.
sub seed_account {
    my ($fake, %o) = @_;
    my $tag = $o{tag} // '';
    my $base = $o{created} // $NOW - 3600;
    my (@cs, @in, @sub);
    for my $i (1 .. 7) {
        push @cs, { %{ $S->checkout_session(id => "cs_$tag$i", customer => "cus_$tag$i",
                       email => "buyer$i\@example.org", name => "Buyer $i") },
                    created => $base + $i };
        push @in, { %{ $S->invoice(id => "in_$tag$i", customer => "cus_$tag$i",
                       billing_reason => 'subscription_create', subscription => "sub_$tag$i") },
                    created => $base + $i };
        push @sub, { %{ $S->subscription(id => "sub_$tag$i", customer => "cus_$tag$i") },
                     created => $base + $i };
    }
    # completed but unpaid (an async payment): counted "unpaid", not queued
    push @cs, { %{ $S->checkout_session(id => "cs_${tag}unpaid", customer => 'cus_U') },
                payment_status => 'unpaid', created => $base + 8 };
    # open sessions, open invoices, canceled subscriptions: not listed
    push @cs, { %{ $S->checkout_session(id => "cs_${tag}open") }, status => 'open',
                payment_status => 'unpaid', created => $base + 9 };
    push @in, { %{ $S->invoice(id => "in_${tag}open", status => 'open') }, created => $base + 9 };
    push @sub, { %{ $S->subscription(id => "sub_${tag}gone", status => 'canceled') },
                 created => $base + 9 };
    $fake->seed(checkout_sessions => \@cs, invoices => \@in, subscriptions => \@sub);
}

seed_account($stripe);

sub config {
    my (%o) = @_;
    my $dir = temp_dir('backfill');
    my $fake = $o{stripe} // $stripe;
    my %c = (
        redis => '127.0.0.1:' . ($o{redis} // $redis)->port,
        prefix => $o{prefix} // 'stripe_sync',
        stripe => { api_base => $fake->url, timeout => 5,
                    api_key_file => write_secret($dir, 'stripe.key',
                                                 ($o{key} // $fake->key) . "\n") },
    );
    delete $c{stripe}{api_key_file} if $o{no_key};
    return spew("$dir/stripe-sync.conf", libconfig(\%c));
}

sub backfill {
    my ($conf, @args) = @_;
    return run_tool('backfill', '-c', $conf, @args, { timeout => tmo(50) });
}

sub key { my ($p, $k) = @_; "{$p}:$k" }

sub queue_ids {
    my ($prefix) = @_;
    return [ map { $_->{id} } @{ $redis->queue(prefix => $prefix) } ];
}

sub checkpoint {
    my ($prefix, $coll, $r) = @_;
    my $v = ($r // $redis)->cmd('GET', key($prefix, "backfill:$coll"));
    return defined $v ? JSON::PP->new->decode($v) : undef;
}

sub summary {
    my ($out, $coll) = @_;
    my ($line) = $out =~ /^(backfill \Q$coll\E(?: \(dry run\))?: .*)$/m;
    return $line // '';
}

my @IDS7 = map { "evt_backfill_${_}" } (
    (map { "cs_$_" } reverse 1 .. 7), (map { "in_$_" } reverse 1 .. 7),
    (map { "sub_$_" } reverse 1 .. 7));

subtest 'usage errors' => sub {
    my $conf = config(prefix => 'usage');
    my ($rc, $out) = backfill($conf, '--help');
    is($rc, 0, '--help: 0');
    like($out, qr/usage: stripe-sync backfill .*--since DATE.*--only/s, 'usage shown');

    ($rc, $out) = backfill($conf, '--bogus');
    is($rc, 2, 'an unknown option: 2');
    like($out, qr/unknown option "--bogus"/, 'named');

    ($rc, $out) = backfill($conf, '--since');
    is($rc, 2, '--since without a value: 2');
    like($out, qr/option "--since" needs a value/, 'says so');

    ($rc, $out) = backfill($conf, '--since', 'last tuesday');
    is($rc, 2, 'a --since that is no date: 2');
    like($out, qr/--since "last tuesday" is not YYYY-MM-DD, unix seconds or an age/,
         'says what it takes');

    ($rc, $out) = backfill($conf, '--only', 'invoices,charges');
    is($rc, 2, 'an unknown collection: 2');
    like($out, qr/--only "charges": not checkout, invoices, subscriptions or customers/,
         'named');

    ($rc, $out) = backfill(config(prefix => 'usage', no_key => 1));
    is($rc, 1, 'no Stripe key: 1');
    like($out, qr/no stripe\.api_key_file/, 'says so');

    ($rc, $out) = backfill(config(prefix => 'usage', key => 'sk_test_wrong_000000'),
                           '--only', 'invoices');
    is($rc, 1, 'a key Stripe refuses: 1');
    like($out, qr{invoices: GET /v1/invoices: HTTP 401: Invalid API Key}, 'says why');
    unlike($out, qr/sk_test_wrong_000000/, 'the key is not printed');
    is($redis->cmd('EXISTS', key('usage', 'backfill:invoices')), 0, 'no checkpoint');
};

subtest '--dry-run: fetches and normalizes, writes nothing' => sub {
    my $mark = $stripe->mark;
    my ($rc, $out) = backfill(config(prefix => 'dry'), '--dry-run');
    is($rc, 0, 'exit 0') or diag $out;
    my @lines = $out =~ /^(would queue: .*)$/mg;
    is(scalar @lines, 21, '21 lines: 7 sessions, 7 invoices, 7 subscriptions');
    ok((grep { $_ eq 'would queue: checkout.session.completed purchase cs_3 cus_3 buyer3@example.org' } @lines),
       'a line: type, action, object id, customer, email');
    ok((grep { $_ eq 'would queue: invoice.paid purchase in_5 cus_5 -' } @lines),
       'an invoice without an email: "-"');
    ok((grep { $_ eq 'would queue: customer.subscription.created subscription_started sub_1 cus_1 -' } @lines),
       'a subscription');
    ok(!(grep { /cs_unpaid|cs_open|in_open|sub_gone/ } @lines), 'nothing unpaid, open or canceled');
    like(summary($out, 'checkout'), qr/fetched 8, would queue 7, duplicates 0, ignored 0, unpaid 1/,
         'checkout summary');
    like(summary($out, 'total'), qr/fetched 22, would queue 21/, 'total');
    my $keys = $redis->cmd('KEYS', '{dry}:*') || [];
    is_deeply($keys, [], 'no key written: no queue, no seen keys, no checkpoint');
    is($stripe->count(since => $mark), 12, '12 requests (4 pages each)');
};

subtest 'on a terminal: one progress line, updated in place' => sub {
    my $shq = sub { my $x = shift; $x =~ s/'/'\\''/g; "'$x'" };
    my $cmd = join ' ', map { $shq->($_) } tool_path(), 'backfill', '-c',
        config(prefix => 'tty'), '--only', 'invoices';
    open my $fh, '-|', 'timeout', tmo(30), 'script', '-qec', $cmd, '/dev/null'
        or die "script: $!";
    my $out = do { local $/; <$fh> };
    close $fh;
    is($? >> 8, 0, 'exit 0 (run under script(1): stderr is a terminal)') or diag $out;
    like($out, qr{\r\e\[Kinvoices: page 1, 2 object\(s\), 2 queued, [\d.]+/s\r\e\[Kinvoices: page 2, }s,
         'each page rewrites the line');
    like($out, qr{\r\e\[Kinvoices: page 4, 7 object\(s\), 7 queued, [\d.]+/s\r?\n}, 'the last one stays');
    unlike($out, qr/invoices: page \d+: /, 'no plain lines');
    like($out, qr/backfill invoices: fetched 7, queued 7/, 'the summary');
};

subtest 'SIGINT: stops at once, the pages read are kept' => sub {
    $stripe->fault(method => 'GET', route => '/v1/invoices', skip => 2, hang => 20);
    my $p = spawn_process(name => 'backfill-int',
        cmd => [ tool_path(), 'backfill', '-c', config(prefix => 'int'), '--only', 'invoices' ]);
    ok(wait_until(sub { @{ $stripe->held } }, tmo(10)), 'page 3 is held by the fake');
    my $t0 = time;
    my $st = $p->stop(sig => 'INT', timeout => tmo(10));
    ok(time - $t0 < 2, sprintf('exited %.2f s after SIGINT', time - $t0));
    is($st >> 8, 1, 'exit 1');
    like($p->output, qr/backfill invoices: fetched 4, queued 4, .* \(interrupted: run it again to continue\)/,
         'the summary says so');
    my $cp = checkpoint('int', 'invoices');
    ok($cp && $cp->{after} eq 'in_4' && !$cp->{done}, 'the checkpoint: after in_4');
    $stripe->clear_faults;
};

subtest 'a run: every page, a 429 on the way, each object once' => sub {
    $stripe->fault(method => 'GET', route => '/v1/invoices', skip => 1, status => 429,
                   retry_after => 1);
    my $mark = $stripe->mark;
    my ($rc, $out) = backfill(config(prefix => 'run'));
    is($rc, 0, 'exit 0') or diag $out;

    is_deeply(queue_ids('run'), \@IDS7, 'the queue: 21 records, newest first per collection');
    like(summary($out, 'checkout'), qr/^backfill checkout: fetched 8, queued 7, duplicates 0, ignored 0, unpaid 1$/,
         'checkout: 8 listed, the unpaid one left out');
    like(summary($out, 'invoices'), qr/fetched 7, queued 7, duplicates 0, ignored 0$/, 'invoices');
    like(summary($out, 'subscriptions'), qr/fetched 7, queued 7, duplicates 0/, 'subscriptions');
    like(summary($out, 'total'), qr/fetched 22, queued 21, duplicates 0, ignored 0/, 'total');
    like($out, qr{^invoices: page 2: 2 object\(s\), 4 in all, 4 queued, [\d.]+/s$}m,
         'a line per page (not a terminal)');

    my $q = $redis->queue(prefix => 'run');
    my ($p) = grep { $_->{id} eq 'evt_backfill_cs_3' } @$q;
    is($p->{type}, 'checkout.session.completed', 'the synthetic type');
    is($p->{action}, 'purchase', 'a purchase');
    is_deeply($p->{object}, { type => 'checkout.session', id => 'cs_3' }, 'the object');
    is($p->{created}, $NOW - 3600 + 3, "the object's created");
    ok(!exists $p->{api_version}, 'no api_version');
    is_deeply($p->{enrich}, ['line_items'], 'line items left to the consumer');
    is($p->{customer}{email}, 'buyer3@example.org', 'the email');
    my ($s) = grep { $_->{id} eq 'evt_backfill_sub_2' } @$q;
    is($s->{action}, 'subscription_started', 'a subscription: subscription_started');
    is_deeply($s->{enrich}, ['email'], 'its email left to the consumer');
    is($redis->cmd('HGET', key('run', 'customers'), 'cus_3'),
       '{"email":"buyer3@example.org","name":"Buyer 3"}', 'the customer map learnt the email');
    ok($redis->cmd('TTL', key('run', 'seen:evt_backfill_in_4')) > 29 * 86400, 'seen keys: 30 days');
    is($redis->cmd('GET', key('run', 'once:purchase:in_4')), 'evt_backfill_in_4',
       'the fact key, shared with the webhook');

    my @inv = $stripe->requests(route => '/v1/invoices', since => $mark);
    is(scalar @inv, 5, 'invoices: 4 pages and one retry');
    is($inv[1]{status}, 429, 'the second page got a 429');
    is($inv[2]{params}{starting_after}, $inv[1]{params}{starting_after},
       'the same page was asked again');
    ok($inv[2]{t} - $inv[1]{done_t} >= 950,
       sprintf('after Retry-After: 1 (%.0f ms)', $inv[2]{t} - $inv[1]{done_t}));
    like($out, qr{stripe: GET /v1/invoices: HTTP 429: injected 429; retrying in 1\.\d s \(attempt 2 of 10\)},
         'the retry is said');
    for my $r ($stripe->requests(since => $mark)) {
        is($r->{params}{limit}, 100, "$r->{route}: limit=100") or last;
    }
    is_deeply([ map { $_->{params}{status} } grep { !defined $_->{params}{starting_after} }
                $stripe->requests(since => $mark) ],
              [qw(complete paid active)], 'status filters: complete, paid, active');
    ok(!(grep { exists $_->{params}{'created[gte]'} } $stripe->requests(since => $mark)),
       'no --since: no created filter');

    for my $c (qw(checkout invoices subscriptions)) {
        my $cp = checkpoint('run', $c);
        ok($cp && $cp->{done} && $cp->{pages} == 4, "$c: checkpoint done after 4 pages")
            or diag explain $cp;
    }
    is(checkpoint('run', 'invoices')->{after}, 'in_1', 'the last id read');
    $stripe->no_violations;
};

subtest 'twice: nothing more; --restart: only duplicates' => sub {
    my $mark = $stripe->mark;
    my ($rc, $out) = backfill(config(prefix => 'run'));
    is($rc, 0, 'exit 0') or diag $out;
    like($out, qr/^backfill checkout: finished earlier \(\d{4}-\d\d-\d\dT[\d:]+Z\): --restart to list it again$/m,
         'finished collections are not listed again');
    is($stripe->count(since => $mark), 0, 'not one request');
    is_deeply(queue_ids('run'), \@IDS7, 'the queue is unchanged');

    ($rc, $out) = backfill(config(prefix => 'run'), '--restart');
    is($rc, 0, '--restart: exit 0') or diag $out;
    is($stripe->count(since => $mark), 12, 'everything listed again');
    like(summary($out, 'total'), qr/fetched 22, queued 0, duplicates 21, ignored 0/,
         'every object a duplicate');
    is_deeply(queue_ids('run'), \@IDS7, 'the queue is unchanged');
    is($redis->cmd('HGET', key('run', 'stats'), 'ingest_duplicate'), 21,
       'counted by the script as duplicates');
};

subtest 'interrupted by a failing page, then resumed' => sub {
    $stripe->fault(method => 'GET', route => '/v1/invoices', skip => 2, times => -1,
                   status => 500);
    my $t0 = time;
    my ($rc, $out) = backfill(config(prefix => 'resume'), '--only', 'invoices');
    is($rc, 1, 'page 3 keeps failing: exit 1');
    like($out, qr{invoices: GET /v1/invoices: HTTP 500: injected 500 \(gave up after 5 attempts\)},
         'says why');
    like(summary($out, 'invoices'), qr/fetched 4, queued 4, .* \(incomplete: run it again to continue\)/,
         'the summary says it is incomplete');
    ok(time - $t0 < 20, sprintf('gave up within %.1f s', time - $t0));
    my $cp = checkpoint('resume', 'invoices');
    is($cp->{after}, 'in_4', 'checkpoint: after the last page read (in_4)');
    ok(!$cp->{done}, 'not done');
    is($cp->{pages}, 2, 'two pages');
    is_deeply(queue_ids('resume'), [ map { "evt_backfill_in_$_" } 7, 6, 5, 4 ],
              'the first two pages are queued');

    $stripe->clear_faults;
    my $mark = $stripe->mark;
    ($rc, $out) = backfill(config(prefix => 'resume'), '--only', 'invoices');
    is($rc, 0, 'the rerun: exit 0') or diag $out;
    like($out, qr/invoices: resuming after in_4 \(2 page\(s\), 4 object\(s\) read before\)/,
         'it says it resumes');
    my @r = $stripe->requests(since => $mark);
    is($r[0]{params}{starting_after}, 'in_4', 'the first request starts after in_4');
    is(scalar @r, 2, 'two more pages');
    like(summary($out, 'invoices'), qr/fetched 3, queued 3, duplicates 0/, 'three more');
    is_deeply(queue_ids('resume'), [ map { "evt_backfill_in_$_" } reverse 1 .. 7 ],
              'every invoice queued exactly once');
    my $cp2 = checkpoint('resume', 'invoices');
    ok($cp2->{done} && $cp2->{pages} == 4 && $cp2->{fetched} == 7,
       'done: 4 pages, 7 objects over both runs');

    # A crash after the enqueue but before the checkpoint: the page is
    # read again, and adds nothing.
    $redis->cmd('SET', key('resume', 'backfill:invoices'), JSON::PP->new->encode(
        { %$cp2, done => JSON::PP::false, after => 'in_4', pages => 2, fetched => 4 }));
    ($rc, $out) = backfill(config(prefix => 'resume'), '--only', 'invoices');
    is($rc, 0, 'a page redone: exit 0') or diag $out;
    like(summary($out, 'invoices'), qr/fetched 3, queued 0, duplicates 3/, 'duplicates only');
    is(scalar @{ queue_ids('resume') }, 7, 'still seven');
};

subtest 'a checkpoint whose object is gone, one that is unreadable' => sub {
    $redis->cmd('SET', key('gone', 'backfill:subscriptions'),
                '{"since":null,"since_arg":"","after":"sub_deleted","done":false,"pages":1,"fetched":2}');
    my ($rc, $out) = backfill(config(prefix => 'gone'), '--only', 'subscriptions');
    is($rc, 0, 'exit 0') or diag $out;
    like($out, qr/subscriptions: Stripe no longer has sub_deleted, the checkpoint: starting over/,
         'a 404 on starting_after: starting over');
    is(scalar @{ queue_ids('gone') }, 7, 'all seven');

    $redis->cmd('SET', key('gone', 'backfill:checkout'), 'garbage');
    ($rc, $out) = backfill(config(prefix => 'gone'), '--only', 'checkout');
    is($rc, 0, 'exit 0') or diag $out;
    like($out, qr/checkout: ignoring the checkpoint in \{gone\}:backfill:checkout: checkpoint is not a JSON object/,
         'an unreadable checkpoint is said and ignored');
    ok(checkpoint('gone', 'checkout')->{done}, 'and replaced');
};

subtest 'a page over 1 MB: asked for again, half as long' => sub {
    $stripe->fault(method => 'GET', route => '/v1/subscriptions', kind => 'huge');
    my $mark = $stripe->mark;
    my ($rc, $out) = backfill(config(prefix => 'huge'), '--only', 'subscriptions');
    is($rc, 0, 'exit 0') or diag $out;
    like($out, qr{subscriptions: GET /v1/subscriptions: the response is over 1048576 bytes: asking for 50 a page},
         'says so');
    is_deeply([ map { $_->{params}{limit} } $stripe->requests(since => $mark) ],
              [ 100, (50) x 4 ], 'limit 100, then 50');
    is(scalar @{ queue_ids('huge') }, 7, 'all seven');
};

subtest '--since: only what was created since; its own checkpoint' => sub {
    my $old = StripeSync::Fake->new(api => 'stripe', page_size_cap => 2);
    seed_account($old, tag => 'old', created => $OLD);
    seed_account($old, tag => 'new');
    my $conf = config(prefix => 'since', stripe => $old);

    my ($rc, $out) = backfill($conf, '--since', '30d', '--only', 'invoices');
    is($rc, 0, '--since 30d: exit 0') or diag $out;
    is_deeply(queue_ids('since'), [ map { "evt_backfill_in_new$_" } reverse 1 .. 7 ],
              'only the recent invoices');
    my @r = $old->requests(route => '/v1/invoices');
    my $gte = $r[0]{params}{'created[gte]'};
    ok(abs($gte - ($NOW - 30 * 86400)) < 60, "created[gte]=$gte: 30 days back");
    ok(!(grep { ($_->{params}{'created[gte]'} // '') ne $gte } @r), 'on every page');
    my $cp = checkpoint('since', 'invoices');
    is($cp->{since_arg}, '30d', 'the checkpoint keeps --since as written');
    is($cp->{since}, $gte, 'and its value');

    my $mark = $old->mark;
    ($rc, $out) = backfill($conf, '--since', '30d', '--only', 'invoices');
    like($out, qr/backfill invoices: finished earlier/, 'the same --since again: finished');

    ($rc, $out) = backfill($conf, '--since', '2000-01-01', '--only', 'invoices');
    is($rc, 0, 'another --since: exit 0') or diag $out;
    like($out, qr/invoices: the checkpoint is for --since "30d": starting over/, 'starts over');
    my ($first) = $old->requests(since => $mark, route => '/v1/invoices');
    is($first->{params}{'created[gte]'}, 946684800, 'YYYY-MM-DD: created[gte] at midnight UTC');
    like(summary($out, 'invoices'), qr/fetched 14, queued 7, duplicates 7/,
         'the old ones now, the recent ones duplicates');
};

subtest '--only customers; at most 25 requests a second' => sub {
    my $many = StripeSync::Fake->new(api => 'stripe', page_size_cap => 2);
    $many->seed(customers => [ map { { id => sprintf('cus_%03d', $_), object => 'customer',
        email => "c$_\@example.org", name => "C $_", created => $NOW - 1000 + $_,
        livemode => JSON::PP::false, metadata => {} } } 1 .. 60 ]);
    my $t0 = time;
    my ($rc, $out) = backfill(config(prefix => 'rate', stripe => $many), '--only', 'customers');
    is($rc, 0, 'exit 0') or diag $out;
    like(summary($out, 'customers'), qr/fetched 60, queued 60/, 'sixty customers');
    ok(!summary($out, 'invoices'), 'nothing else listed');
    my $q = $redis->queue(prefix => 'rate');
    is($q->[0]{action}, 'customer_created', 'as customer_created');
    is($q->[0]{livemode}, 0, "livemode from the object");
    my @t = map { $_->{t} / 1000 } $many->requests;
    is(scalar @t, 30, '30 pages');
    my @over;
    for my $i (0 .. $#t) {
        for my $j ($i + 1 .. $#t) {
            my $allowed = 1 + 25 * ($t[$j] - $t[$i]) + 1;    # 1: timer slack
            push @over, sprintf('requests %d..%d: %d in %.3f s', $i, $j, $j - $i + 1,
                                $t[$j] - $t[$i]) if $j - $i + 1 > $allowed;
        }
    }
    ok(!@over, 'no stretch of requests faster than 25/s') or diag join "\n", @over[0 .. 4];
    ok($t[-1] - $t[0] >= 29 / 25 - 0.05, sprintf('30 requests took %.2f s', $t[-1] - $t[0]));
};

SKIP: {
    skip 'the nginx module is not built: no webhook-vs-backfill test', 1
        unless -f module_path();

subtest 'a purchase a signed webhook already queued is not queued again' => sub {
    my $s = StripeSync::Fake::Stack->new;
    my $acct = StripeSync::Fake->new(api => 'stripe', page_size_cap => 2);
    seed_account($acct, tag => 'w');
    my $q = sub { [ map { $_->{id} } @{ $s->redis->queue } ] };

    my ($inv) = grep { $_->{id} eq 'in_w3' } @{ $acct->state->{objects}{invoices} };
    my ($cs) = grep { $_->{id} eq 'cs_w5' } @{ $acct->state->{objects}{'checkout/sessions'} };
    my ($sub) = grep { $_->{id} eq 'sub_w1' } @{ $acct->state->{objects}{subscriptions} };
    ok($inv && $cs && $sub, 'the objects as the fake Stripe holds them');
    $s->send('invoice.paid', $inv, id => 'evt_hook_inv');
    $s->send('checkout.session.completed', $cs, id => 'evt_hook_cs');
    $s->send('customer.subscription.created', $sub, id => 'evt_hook_sub');
    is_deeply($q->(), [qw(evt_hook_inv evt_hook_cs evt_hook_sub)], 'three webhooks queued');

    my ($rc, $out) = backfill(config(prefix => $s->prefix, redis => $s->redis, stripe => $acct));
    is($rc, 0, 'backfill: exit 0') or diag $out;
    for my $c (qw(checkout invoices subscriptions)) {
        like(summary($out, $c), qr/queued 6, duplicates 1 \(1 already queued from an event\)/,
             "$c: the one a webhook queued is a duplicate");
    }
    my @ids = @{ $q->() };
    is(scalar @ids, 21, '3 webhooks + 18 backfilled');
    ok(!(grep { /^evt_backfill_(in_w3|cs_w5|sub_w1)$/ } @ids), 'none of those three twice');
    is($s->redis->cmd('HGET', $s->key('stats'), 'ingest_duplicate_fact'), 3,
       'the script counted three duplicate facts');

    # and the other way round: a webhook after the backfill
    my ($inv6) = grep { $_->{id} eq 'in_w6' } @{ $acct->state->{objects}{invoices} };
    $s->send('invoice.payment_succeeded', $inv6, id => 'evt_hook_late', expect => 'duplicate');
    pass('a webhook for a backfilled purchase is answered duplicate');
};
}

finish();
