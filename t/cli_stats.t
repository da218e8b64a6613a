# stripe-sync stats (SPEC 6, issue 5): the numbers match the Redis state
# set up here (queue, processing per consumer, retry and due, dead,
# consumers and heartbeats, customers, counters); --json parses;
# --prometheus parses and every metric has HELP and TYPE; --rate gives
# per-second rates; then against a live consumer.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use StripeSync::Test;

require_tool();

my $redis = start_redis();
my $dir = temp_dir('stats');
my $P = 'st_test';
my $conf = spew("$dir/stats.conf", libconfig({
    redis => $redis->addr, prefix => $P, provider => { type => 'log' } }), 0600);

sub k { "{$P}:$_[0]" }

# (exit code, stdout, stderr)
sub tool3 {
    my (@args) = @_;
    my $d = temp_dir('out');
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', "$d/out" or POSIX::_exit(126);
        open STDERR, '>', "$d/err" or POSIX::_exit(126);
        exec(tool_path(), @args) or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    return ($? >> 8, slurp("$d/out") // '', slurp("$d/err") // '');
}

sub stats { tool3('stats', '-c', $conf, @_) }

# ---- the state ----
my $now_ms = int(time * 1000);
$redis->cmd('RPUSH', k('queue'), "q$_") for 1 .. 3;
$redis->cmd('ZADD', k('retry'), $now_ms - 5000, 'r1', $now_ms - 1, 'r2',
            $now_ms + 600_000, 'r3', $now_ms + 900_000, 'r4', $now_ms + 1e9, 'r5');
$redis->cmd('LPUSH', k('dead'), "d$_") for 1 .. 4;
$redis->cmd('SADD', k('consumers'), 'host-a:1', 'host-b:2', 'host-c:3');
$redis->cmd('RPUSH', k('processing:host-a:1'), 'p1', 'p2');
$redis->cmd('RPUSH', k('processing:host-b:2'), 'p3');
$redis->cmd('SET', k('consumer:host-a:1'), 1, 'EX', 300);
$redis->cmd('SET', k('consumer:host-c:3'), 3, 'EX', 300);
$redis->cmd('HSET', k('customers'), "cus_$_", '{"email":"x@example.org"}') for 1 .. 6;
$redis->cmd('HSET', k('stats'), consumer_done => 10, consumer_dead => 4,
            consumer_retried => 7, ingest_queued => 25, ingest_duplicate => 3,
            backfill_pages => 2, 'odd-name' => 1);
# another prefix's keys are not counted
$redis->cmd('RPUSH', '{other}:queue', 'x') for 1 .. 9;

subtest 'the table' => sub {
    my ($rc, $out, $err) = stats();
    is($rc, 0, 'exit 0') or diag $err;
    like($out, qr/^queue\s+3$/m, 'queue 3');
    like($out, qr/^processing\s+3$/m, 'processing 3 (2 + 1)');
    like($out, qr/^retry\s+5\s+\(2 due now\)$/m, 'retry 5, 2 due');
    like($out, qr/^dead\s+4$/m, 'dead 4');
    like($out, qr/^consumers\s+3\s+\(2 live\)$/m, 'consumers 3, 2 live');
    like($out, qr/^  host-a:1\s+2 in hand, live$/m, 'host-a');
    like($out, qr/^  host-b:2\s+1 in hand, no heartbeat$/m, 'host-b');
    like($out, qr/^  host-c:3\s+0 in hand, live$/m, 'host-c');
    like($out, qr/^customers\s+6$/m, 'customers 6');
    like($out, qr/^consumer_done\s+10$/m, 'a counter');
    like($out, qr/^ingest_queued\s+25$/m, 'the module\'s counter');
    unlike($out, qr/per second/, 'no rates without --rate');
};

subtest '--json' => sub {
    my ($rc, $out) = stats('--json');
    is($rc, 0, 'exit 0');
    my $j = eval { json_decode($out) };
    ok($j, 'parses') or return diag $out;
    my %want = (prefix => $P, queue => 3, processing => 3, retry => 5, retry_due => 2,
                dead => 4, customers => 6, consumers => 3, consumers_live => 2);
    is($j->{$_}, $want{$_}, "$_ $want{$_}") for sort keys %want;
    ok(abs($j->{time} - time) < 60, 'time');
    is_deeply($j->{counters}, { consumer_done => 10, consumer_dead => 4,
        consumer_retried => 7, ingest_queued => 25, ingest_duplicate => 3,
        backfill_pages => 2, 'odd-name' => 1 }, 'every counter');
    is_deeply($j->{consumer_list}, [
        { id => 'host-a:1', processing => 2, live => 1 },
        { id => 'host-b:2', processing => 1, live => 0 },
        { id => 'host-c:3', processing => 0, live => 1 } ], 'per consumer');
    ok(!exists $j->{rates}, 'no rates without --rate');
};

subtest '--prometheus' => sub {
    my ($rc, $out) = stats('--prometheus');
    is($rc, 0, 'exit 0');
    my $m = parse_prometheus($out);
    my $l = qq(prefix="$P");
    my %want = (
        "stripe_sync_queue_length{$l}" => 3,
        "stripe_sync_processing_jobs{$l}" => 3,
        "stripe_sync_retry_jobs{$l}" => 5,
        "stripe_sync_retry_due_jobs{$l}" => 2,
        "stripe_sync_dead_letters{$l}" => 4,
        "stripe_sync_consumers{$l}" => 3,
        "stripe_sync_consumers_live{$l}" => 2,
        "stripe_sync_customers{$l}" => 6,
        qq(stripe_sync_consumer_jobs_total{outcome="done",$l}) => 10,
        qq(stripe_sync_consumer_jobs_total{outcome="dead",$l}) => 4,
        qq(stripe_sync_consumer_jobs_total{outcome="retried",$l}) => 7,
        qq(stripe_sync_consumer_jobs_total{outcome="stale",$l}) => 0,
        qq(stripe_sync_ingest_events_total{$l,result="queued"}) => 25,
        qq(stripe_sync_ingest_events_total{$l,result="duplicate"}) => 3,
        qq(stripe_sync_ingest_events_total{$l,result="duplicate_fact"}) => 0,
        "stripe_sync_consumer_skipped_ops_total{$l}" => 0,
        "stripe_sync_dlq_replayed_total{$l}" => 0,
        "stripe_sync_backfill_pages_total{$l}" => 2,
        "stripe_sync_odd_name_total{$l}" => 1,
    );
    is($m->{$_}, $want{$_}, "$_ $want{$_}") for sort keys %want;

    my (%help, %type, %seen);
    for my $line (split /\n/, $out) {
        if ($line =~ /^# HELP (\S+) \S/) { $help{$1}++; next }
        if ($line =~ /^# TYPE (\S+) (counter|gauge)$/) {
            $type{$1} = $2;
            ok(!$seen{$1}, "$1: TYPE before its samples");
            next;
        }
        like($line, qr/^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)+\} -?\d+$/,
             "a sample line: $line") or next;
        my ($name) = $line =~ /^(\w+)/;
        $seen{$name}++;
    }
    for my $name (sort keys %seen) {
        ok($help{$name} && $type{$name}, "$name has HELP and TYPE");
        is($type{$name}, 'counter', "$name is a counter") if $name =~ /_total$/;
        is($type{$name}, 'gauge', "$name is a gauge") if $name !~ /_total$/;
    }
    is($help{$_}, 1, "$_: one HELP") for sort keys %help;
};

subtest '--rate: counters read twice' => sub {
    my $d = temp_dir('rate');
    my $p = spawn_process(name => 'stats-rate', dir => $d,
        cmd => [ tool_path(), 'stats', '-c', $conf, '--json', '--rate=1' ]);
    sleep 0.4;
    $redis->cmd('HINCRBY', k('stats'), 'consumer_done', 20);
    $redis->cmd('HINCRBY', k('stats'), 'consumer_stale', 5);
    my $st = $p->wait_exit(tmo(10));
    is($st, 0, 'exit 0');
    my $j = eval { json_decode($p->output) } or return diag $p->output;
    is($j->{counters}{consumer_done}, 30, 'the second reading');
    ok($j->{rate_window} >= 1 && $j->{rate_window} < 2, "window $j->{rate_window} s");
    # both are printed with 3 decimals: the window's rounding alone moves
    # 20 / window by up to 0.01
    my $want = 20 / $j->{rate_window};
    ok(abs($j->{rates}{consumer_done} - $want) < 0.02,
       "consumer_done rate $j->{rates}{consumer_done}/s = 20 / window");
    ok(abs($j->{rates}{consumer_stale} - 5 / $j->{rate_window}) < 0.02,
       'a counter new in the second reading: from 0');
    is($j->{rates}{ingest_queued}, 0, 'unchanged: 0/s');

    my ($rc, $out) = stats('--rate=0.2');
    is($rc, 0, 'table with --rate');
    like($out, qr/^counter\s+total\s+per second$/m, 'a per-second column');
    like($out, qr/^consumer_done\s+30\s+0\.00$/m, 'with rates');
};

subtest 'an empty Redis' => sub {
    my $c2 = spew("$dir/empty.conf", libconfig({
        redis => $redis->addr, prefix => 'nothing_here', provider => { type => 'log' } }), 0600);
    my ($rc, $out) = tool3('stats', '-c', $c2, '--json');
    is($rc, 0, 'exit 0');
    my $j = json_decode($out);
    is_deeply([ @$j{qw(queue processing retry retry_due dead customers consumers)} ],
              [0, 0, 0, 0, 0, 0, 0], 'all zero');
    is_deeply($j->{counters}, {}, 'no counters');
    ($rc, $out) = tool3('stats', '-c', $c2, '--prometheus');
    my $m = parse_prometheus($out);
    is($m->{'stripe_sync_consumer_jobs_total{outcome="done",prefix="nothing_here"}'}, 0,
       'known counters are 0, not missing');
};

subtest 'against a running consumer' => sub {
    my $c = start_consumer(config => {
        redis => $redis->addr, prefix => $P, provider => { type => 'log' },
        heartbeat => 1, consumer_id => 'live-one' });
    ok(wait_until(sub { $redis->cmd('EXISTS', k('consumer:live-one')) }, tmo(10)),
       'its heartbeat') or diag $c->output;
    my ($rc, $out) = stats('--json');
    my $j = json_decode($out);
    my ($me) = grep { $_->{id} eq 'live-one' } @{ $j->{consumer_list} };
    ok($me && $me->{live}, 'listed, live') or diag $out;
    $c->stop;
};

subtest 'usage and failures' => sub {
    my ($rc, $out, $err) = stats('--json', '--prometheus');
    is($rc, 2, 'two formats: exit 2');
    ($rc, $out, $err) = stats('--bogus');
    is($rc, 2, 'unknown option: exit 2');
    like($err, qr/unknown option "--bogus"/, 'named');
    ($rc, $out, $err) = stats('--rate=0');
    is($rc, 2, '--rate=0: exit 2');
    my $f = spew("$dir/down.conf", libconfig({ redis => '127.0.0.1:' . free_port(),
        provider => { type => 'log' } }), 0600);
    ($rc, $out, $err) = tool3('stats', '-c', $f, '--prometheus');
    is($rc, 1, 'Redis down: exit 1');
    is($out, '', 'nothing on stdout (a textfile collector keeps the last file)');
    like($err, qr/redis 127\.0\.0\.1:\d+/, "names it: $err");
};

finish();
