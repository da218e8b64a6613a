# stripe-sync dlq (SPEC 6, issue 5): dead letters made for real (Kit
# answers 422), listed and shown; replayed (one, then --all) to the take
# end of the queue, after which the consumer completes them; a letter
# that is not a record can be shown and purged but not replayed; purge
# needs --yes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use StripeSync::Test;
use StripeSync::Fake;

require_module();
require_tool();

my $s = StripeSync::Fake::Stack->new;
my $r = $s->redis;
my $kit = StripeSync::Fake->new(api => 'kit', seed => { tags => ['Buyer'] });
my %conf = (provider => $kit, rules => [ { on => 'purchase', tag => ['Buyer'] } ],
            provider_extra => { rate => 50, burst => 50 });
my $c = $s->consumer(%conf);
my $conf_file = $c->{conf};
my $dead_key = $s->key('dead');

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

sub dlq { tool3('dlq', '-c', $conf_file, @_) }

sub dead_raw { $r->cmd('LRANGE', $dead_key, 0, -1) || [] }

sub purchase {
    my ($n) = @_;
    return $s->send('invoice.paid', $s->invoice(id => "in_$n", customer => "cus_$n",
        email => lc("$n\@example.org"), name => "$n Buyer",
        billing_reason => 'subscription_create', subscription => "sub_$n"));
}

sub tagged {
    my ($email) = @_;
    return scalar grep { ($_->{json}{email_address} // '') eq $email
                         && $_->{status} =~ /^20[01]$/ }
        $kit->requests(method => 'POST', route => qr{^/tags/\d+/subscribers$});
}

# ---- dead letters, made by the consumer ----

$kit->fault(method => 'POST', route => qr{^/tags/\d+/subscribers$}, status => 422,
            times => 2, body => { errors => ['Subscriber is locked'] });
my $idA = purchase('A');
ok(wait_until(sub { @{ dead_raw() } == 1 }, tmo(20)), 'A dead-lettered')
    or diag $c->output;
my $idB = purchase('B');
ok(wait_until(sub { @{ dead_raw() } == 2 }, tmo(20)), 'B dead-lettered')
    or diag $c->output;
ok($s->idle, 'the consumer is idle');
$kit->clear_faults;
is(tagged('a@example.org'), 0, 'A was not tagged');

# a queue entry that was not JSON, as the consumer keeps it
my $raw_letter = json_encode({ raw => '{"v":1,"id":"evt_cut', raw_bytes => 19,
    error => 'queue entry is not JSON: parse error: premature EOF',
    attempts => 0, failed_at => 1745437580, consumer => 'host:1' });
$r->cmd('LPUSH', $dead_key, $raw_letter);

my ($raw_id, %letter);

subtest 'list: one line per letter, oldest first' => sub {
    my ($rc, $out, $err) = dlq('list');
    is($rc, 0, 'exit 0') or diag $err;
    my @lines = split /\n/, $out;
    is(scalar @lines, 3, 'three lines') or diag $out;
    my @f = map { [ split /\s{2,}/, $_, 6 ] } @lines;
    is($f[0][0], $idA, 'A first (oldest)');
    is($f[1][0], $idB, 'then B');
    is_deeply([ @{ $f[0] }[1, 2, 3] ], ['purchase', 'cus_A', 1],
              'action, customer, attempts');
    like($f[0][4], qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, "failed at, ISO: $f[0][4]");
    like($f[0][5], qr/422/, "the error: $f[0][5]");
    ok(length($f[0][5]) <= 83, 'the error cut to 80 characters (+ "...")');
    ($raw_id) = $f[2][0] =~ /^(dead-[0-9a-f]{12})$/;
    ok($raw_id, "the raw letter's id: $f[2][0]");
    is_deeply([ @{ $f[2] }[1 .. 4] ], ['-', '-', 0, '2025-04-23T19:46:20Z'],
              'no action or customer; attempts 0; its time');
    like($err, qr/3 dead letter\(s\) in \{stripe_sync\}:dead/, 'a count on stderr');
    my ($rc2, $out2) = dlq('list');
    is($out2, $out, 'ids are stable');
};

subtest 'show: the whole letter, indented' => sub {
    my ($rc, $out) = dlq('show', $idA);
    is($rc, 0, 'exit 0');
    like($out, qr/^\{\n  "record": \{\n    "v": 1,/, 'indented by two') or diag $out;
    my ($stored) = grep { index($_, $idA) >= 0 } @{ dead_raw() };
    is_deeply(json_decode($out), json_decode($stored), 'the letter as stored');
    %letter = (A => $stored);
    ($rc, $out) = dlq('show', $raw_id);
    is($rc, 0, 'the raw one too');
    is(json_decode($out)->{raw}, '{"v":1,"id":"evt_cut', 'its raw entry');
    my $err;
    ($rc, $out, $err) = dlq('show', 'evt_nope');
    is($rc, 1, 'unknown id: exit 1');
    like($err, qr/no dead letter "evt_nope"/, 'says so');
};

subtest 'replay refuses a letter that is not a record' => sub {
    my ($rc, $out, $err) = dlq('replay', $raw_id);
    is($rc, 1, 'exit 1');
    like($err, qr/cannot be replayed: it holds no record: .*"raw"; it can be shown and purged/,
         "says why: $err");
    is(scalar @{ dead_raw() }, 3, 'nothing moved');
};

subtest 'replay ID: to the take end of the queue, atomically' => sub {
    $c->stop;
    my $marker = '{"v":1,"id":"evt_marker","type":"customer.created","action":"customer_created","object":{"type":"customer","id":"cus_M"}}';
    $r->cmd('LPUSH', $s->key('queue'), $marker);
    my ($rc, $out, $err) = dlq('replay', $idA);
    is($rc, 0, 'exit 0') or diag $err;
    is($out, "replayed $idA (purchase) to {stripe_sync}:queue\n", 'says so');
    my $q = $r->cmd('LRANGE', $s->key('queue'), 0, -1);
    is(scalar @$q, 2, 'two in the queue');
    my ($rec_bytes) = $letter{A} =~ /^\{"record":(.*),"error":/;
    is($q->[-1], $rec_bytes, 'the take end (next) holds the record, byte for byte');
    is($q->[0], $marker, 'the entry waiting before stays behind it');
    is(scalar @{ dead_raw() }, 2, 'the letter left {P}:dead');
    ok(!grep({ index($_, $idA) >= 0 } @{ dead_raw() }), 'A is not in it');
    is($s->stats->{dlq_replayed}, 1, 'counted: dlq_replayed');
    ($rc, $out, $err) = dlq('replay', $idA);
    is($rc, 1, 'again: exit 1, it is gone');

    $c = $s->consumer(%conf, log => $c->{log});
    ok($s->idle(tmo(20)), 'the consumer took it') or diag $c->output;
    is(tagged('a@example.org'), 1, 'and completed it: A tagged at Kit');
    ok(!grep({ index($_, $idA) >= 0 } @{ dead_raw() }), 'no new dead letter');
};

subtest 'replay --all: every record, the rest left' => sub {
    # a step record left by an earlier attempt stays; the attempts go
    my $job = $s->key("job:$idB");
    $r->cmd('HSET', $job, 'attempts', 5, 'step:9', 'done');
    $c->stop;
    my ($rc, $out, $err) = dlq('replay', '--all');
    is($rc, 0, 'exit 0') or diag $err;
    my $after = $r->hgetall($job);
    ok(!exists $after->{attempts}, 'the job record loses its attempts')
        or diag explain $after;
    is($after->{'step:9'}, 'done', 'and keeps its steps');
    is($after->{'step:0'}, 'done',
       'including the one the consumer finished before the letter died');
    $c = $s->consumer(%conf, log => $c->{log});
    like($out, qr/^replayed 1 dead letter\(s\) to \{stripe_sync\}:queue; 1 left in \{stripe_sync\}:dead$/,
         $out);
    like($err, qr/skipped \Q$raw_id\E: it holds no record/, 'the raw one skipped');
    ok($s->idle(tmo(20)), 'the consumer took it') or diag $c->output;
    is(tagged('b@example.org'), 1, 'B completed');
    is_deeply([ map { json_decode($_)->{raw} // 'record' } @{ dead_raw() } ],
              ['{"v":1,"id":"evt_cut'], 'only the raw letter is left');
    is($s->stats->{dlq_replayed}, 2, 'dlq_replayed 2');
};

subtest 'purge needs --yes' => sub {
    my ($rc, $out, $err) = dlq('purge');
    is($rc, 2, 'no --yes: exit 2');
    like($err, qr/add --yes/, 'says so');
    is(scalar @{ dead_raw() }, 1, 'nothing deleted');
    ($rc, $out) = dlq('purge', $raw_id, '--yes');
    is($rc, 0, 'purge ID --yes');
    is($out, "purged 1 dead letter(s) from {stripe_sync}:dead\n", 'one');
    is(scalar @{ dead_raw() }, 0, 'gone');
    $r->cmd('LPUSH', $dead_key, json_encode({ raw => "x$_", raw_bytes => 2,
        error => 'e', attempts => 0, failed_at => 1, consumer => 'c' })) for 1 .. 3;
    ($rc, $out) = dlq('purge', '--yes');
    is($rc, 0, 'purge --yes');
    is($out, "purged 3 dead letter(s) from {stripe_sync}:dead\n", 'all three');
    is($r->cmd('EXISTS', $dead_key), 0, '{P}:dead is empty');
    is($s->stats->{dlq_purged}, 4, 'counted: dlq_purged');
    ($rc, $out) = dlq('list');
    is("$rc:$out", '0:', 'list: nothing');
};

subtest 'usage and failures' => sub {
    my ($rc, $out, $err) = dlq();
    is($rc, 2, 'no verb: exit 2');
    ($rc, $out, $err) = dlq('resurrect');
    is($rc, 2, 'unknown verb: exit 2');
    like($err, qr/unknown dlq command "resurrect"/, 'named');
    ($rc) = dlq('replay');
    is($rc, 2, 'replay without ID or --all: exit 2');
    ($rc) = dlq('replay', 'evt_x', '--all');
    is($rc, 2, 'both: exit 2');
    ($rc) = dlq('show');
    is($rc, 2, 'show without ID: exit 2');
    ($rc) = dlq('list', '--yes');
    is($rc, 2, '--yes with list: exit 2');
    ($rc, $out, $err) = dlq('purge', 'evt_none', '--yes');
    is($rc, 1, 'purge of an unknown id: exit 1');
    my $dir = temp_dir('dlqconf');
    my $f = spew("$dir/down.conf", "redis = \"127.0.0.1:" . free_port() . "\";\n"
                 . "provider = { type = \"log\"; };\n", 0600);
    ($rc, $out, $err) = tool3('dlq', '-c', $f, 'list');
    is($rc, 1, 'Redis down: exit 1');
    like($err, qr/redis 127\.0\.0\.1:\d+: /, "names it: $err");
    ($rc, $out, $err) = tool3('dlq', '-c', "$dir/none.conf", 'list');
    is($rc, 1, 'no config file: exit 1');
    like($err, qr/none\.conf/, 'names it');
};

finish();
