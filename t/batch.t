# The events a worker reads in one pass of its event loop go to Redis as
# one script call (enqueue_script.h): each is still deduped, queued and put
# in its customer's order exactly as if it came alone, and each request
# gets its own answer. The worker is stopped while a burst is written to
# open connections, so that one pass reads all of it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep);
use StripeSync::Test;

require_module();

my $SECRET = 'whsec_batch_0123456789';

my $redis = start_redis(debug => 1);
my $ng = start_nginx(
    workers => 1,
    http => "stripe_sync_redis 127.0.0.1:$redis->{port};
             stripe_sync_redis_timeout 5s;",
    conf => "location = /hook { stripe_sync; stripe_sync_secret $SECRET; }
             location = /other {
                 stripe_sync; stripe_sync_secret $SECRET;
                 stripe_sync_prefix other;
             }
             location = /status { stripe_sync_status; }");

my ($worker) = $ng->worker_pids;
ok($worker, 'one worker');

sub event {
    my ($id, $customer) = @_;
    return make_event(type => 'invoice.payment_failed', id => $id,
        object => { id => "in_$id", object => 'invoice',
                    customer => $customer, attempt_count => 1,
                    status => 'open', customer_email => "$customer\@example.org" });
}

sub metric {
    my ($name) = @_;
    my $m = parse_prometheus(http_get($ng->url('/status'))->{content});
    return $m->{$name} // 0;
}

# burst(@requests): each [path, body] on a keep-alive connection of its
# own, opened (and accepted) first; then the worker is stopped, every
# request written, the worker continued; returns the answers in order
sub burst {
    my (@reqs) = @_;
    my @socks = map {
        IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port,
                              Proto => 'tcp', Timeout => tmo(5))
            or die "connect: $!";
    } @reqs;
    sleep 0.3;     # accepted while the worker runs

    kill 'STOP', $worker or die "SIGSTOP: $!";
    for my $i (0 .. $#reqs) {
        my ($path, $body) = @{ $reqs[$i] };
        my $data = raw_post($path, $body, secret => $SECRET, keepalive => 1);
        my $n = syswrite $socks[$i], $data;
        die "short write" unless defined $n && $n == length $data;
    }
    sleep 0.2;
    kill 'CONT', $worker or die "SIGCONT: $!";

    my @res;
    for my $s (@socks) {
        my ($buf, $r) = ('');
        my $deadline = time + tmo(10);
        while (!$r && time < $deadline) {
            IO::Select->new($s)->can_read(1) or next;
            sysread($s, $buf, 65536, length $buf) or last;
            next unless $buf =~ /^HTTP\/1\.1 (\d+).*?\r\nContent-Length: (\d+)\r\n.*?\r\n\r\n/s;
            my ($status, $len) = ($1, $2);
            my $body = substr $buf, $+[0];
            next if length $body < $len;
            $r = { status => $status, content => substr($body, 0, $len) };
            $r->{json} = res_json($r);
        }
        push @res, $r // { status => 0, content => $buf };
        close $s;
    }
    return @res;
}

sub answer {
    my ($r) = @_;
    return "status $r->{status}" unless $r->{status} == 200;
    return $r->{json}{duplicate} ? 'duplicate' : 'queued';
}

# --- one burst: new events, their duplicates, another location -----------

my @ids = map { unique_id('evt') } 1 .. 20;
my @customers = map { "cus_B$_" } 1 .. 4;
my (@reqs, @what);
for my $i (0 .. $#ids) {
    push @reqs, ['/hook', event($ids[$i], $customers[$i % 4])];
    push @what, "new $ids[$i]";
    # the same event again, right after it: a Stripe retry
    push @reqs, ['/hook', event($ids[$i], $customers[$i % 4])];
    push @what, "again $ids[$i]";
}
my @other = map { unique_id('evt') } 1 .. 6;
push @reqs, map { ['/other', event($_, 'cus_O')] } @other;
push @what, map { "other $_" } @other;

my $calls0 = metric('stripe_sync_redis_script_calls_total');
my $events0 = metric('stripe_sync_redis_script_events_total');

my @res = burst(@reqs);

my %per_id;
for my $i (0 .. $#ids * 2 + 1) {
    my ($id) = $what[$i] =~ /(\S+)$/;
    push @{ $per_id{$id} }, answer($res[$i]);
}
my $pairs_ok = grep {
    my @a = sort @{ $per_id{$_} };
    "@a" eq 'duplicate queued';
} @ids;
is($pairs_ok, 20, 'each event and its copy in the same burst: one queued, '
   . 'one duplicate') or diag(explain(\%per_id));
is_deeply([ map { answer($_) } @res[40 .. 45] ], [ ('queued') x 6 ],
          'the other location\'s events queued');

my $calls = metric('stripe_sync_redis_script_calls_total') - $calls0;
my $events = metric('stripe_sync_redis_script_events_total') - $events0;
is($events, 46, 'every event went to Redis once');
cmp_ok($calls, '<=', 8, "in a few script calls ($calls for 46 events)");
cmp_ok($calls, '>=', 2, 'at least one per location');

is($redis->queue_len, 20, '20 records in the queue');
is($redis->queue_len(prefix => 'other'), 6, "6 in the other prefix's queue");
my $stats = $redis->hgetall($redis->key('stats'));
is($stats->{ingest_queued}, 20, 'stats: 20 queued');
is($stats->{ingest_duplicate}, 20, 'stats: 20 duplicates');

# each customer's order list is the order its records were queued in
my @queued = @{ $redis->queue };
for my $c (@customers) {
    my @in_queue = map { $_->{id} } grep { ($_->{customer}{id} // '') eq $c }
                   @queued;
    my @order = @{ $redis->cmd('LRANGE', "{stripe_sync}:order:$c", 0, -1) };
    is_deeply(\@order, \@in_queue, "$c: order list as queued (5 events)")
        or diag(explain({ order => \@order, queue => \@in_queue }));
    is(scalar @order, 5, "$c: 5 events");
}

# --- a group commit: while a call is in flight, the events that come
#     wait for its reply, then go together ----------------------------------

{
    my $sleeper = $redis->cmd_nowait('DEBUG', 'SLEEP', 1);
    ok(wait_until(sub { $redis->stalled(0.2) }, tmo(2)), 'Redis stalled');
    my $c0 = metric('stripe_sync_redis_script_calls_total');
    my $e0 = metric('stripe_sync_redis_script_events_total');

    # ten requests 50 ms apart: ten passes of the worker's loop
    my @g = map { unique_id('evt') } 1 .. 10;
    my @socks;
    for my $id (@g) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $ng->port, Proto => 'tcp', Timeout => tmo(5))
            or die "connect: $!";
        my $data = raw_post('/hook', event($id, 'cus_G'), secret => $SECRET);
        syswrite($s, $data) == length $data or die "short write";
        push @socks, $s;
        sleep 0.05;
    }
    eval { $sleeper->read_reply(tmo(5)) };
    my @st;
    for my $s (@socks) {
        my $buf = '';
        my $deadline = time + tmo(10);
        while ($buf !~ /\r\n\r\n.*\}/s && time < $deadline) {
            IO::Select->new($s)->can_read(1) or next;
            sysread($s, $buf, 65536, length $buf) or last;
        }
        push @st, $buf =~ m{^HTTP/1\.1 (\d+)} ? $1 : 0;
        close $s;
    }
    is_deeply(\@st, [ (200) x 10 ], 'all ten answered 200 after the stall');
    my $calls = metric('stripe_sync_redis_script_calls_total') - $c0;
    is(metric('stripe_sync_redis_script_events_total') - $e0, 10,
       'ten events sent');
    cmp_ok($calls, '<=', 2, "in two calls ($calls): the first, then the "
           . 'nine that waited for its reply');
}

# --- NOSCRIPT: the burst is sent again whole, as EVAL ----------------------

$redis->cmd('SCRIPT', 'FLUSH');
my ($evals_before) = $redis->cmd('INFO', 'commandstats')
                     =~ /^cmdstat_eval:calls=(\d+)/m;
$evals_before //= 0;
my @n = map { unique_id('evt') } 1 .. 10;
@res = burst(map { ['/hook', event($_, 'cus_N')] } @n);
is_deeply([ map { answer($_) } @res ], [ ('queued') x 10 ],
          'after SCRIPT FLUSH: all 10 queued');
my ($evals_after) = $redis->cmd('INFO', 'commandstats')
                    =~ /^cmdstat_eval:calls=(\d+)/m;
cmp_ok($evals_after // 0, '>', $evals_before, 'sent as EVAL');
cmp_ok(($evals_after // 0) - $evals_before, '<', 10,
       'as one call for several events');
is($redis->queue_len, 40, '40 records in the queue');

# --- a refused call: every event of it answered 503, none acknowledged ----

# Redis refuses writes (min-replicas with none): the whole call is refused
$redis->cmd('CONFIG', 'SET', 'min-replicas-to-write', '1');
my @m = map { unique_id('evt') } 1 .. 5;
@res = burst(map { ['/hook', event($_, 'cus_M')] } @m);
is_deeply([ map { $_->{status} } @res ], [ (503) x 5 ],
          'Redis refused the call: all five answered 503');
like($res[0]{content}, qr/Redis refused the event/, 'saying so');
$redis->cmd('CONFIG', 'SET', 'min-replicas-to-write', '0');
@res = burst(map { ['/hook', event($_, 'cus_M')] } @m);
is_deeply([ map { answer($_) } @res ], [ ('queued') x 5 ],
          'retried: all five queued');
is($redis->queue_len, 45, '45 records in the queue');

# --- the script refuses arguments that do not add up -----------------------

my $h = slurp(repo_root() . '/src/enqueue_script.h');
my ($def) = $h =~ /#define ENQUEUE_SCRIPT\s+\\\n(.*?)\n\n/s;
my $script = join '', $def =~ /"((?:[^"\\]|\\.)*)"/g;
$script =~ s/\\n/\n/g;
$script =~ s/\\(.)/$1/g;
like($script, qr/redis\.call\('LPUSH'/, 'the script, from enqueue_script.h');

my $size = $redis->cmd('DBSIZE');
my $e = $redis->connect->command('EVAL', $script, 4, 'q', 'c', 's', 'seen:x', '60',
                    '00', 'rec', '', '');
isa_ok($e, 'StripeSync::Test::RedisError', 'four arguments for an event');
like("$e->{message}", qr/want a ttl and 5 arguments per event, got 5/,
     'refused, naming the count') or diag(explain($e));
$e = $redis->connect->command('EVAL', $script, 4, 'q', 'c', 's', 'seen:x', '60',
                 '11', 'rec', '', '', 'evt_x');
like("$e->{message}", qr/the flags name 6 keys, got 4/,
     'flags naming keys not given: refused');
$e = $redis->connect->command('EVAL', $script, 3, 'q', 'c', 's', '60');
like("$e->{message}", qr/want a ttl and 5 arguments per event, got 1/,
     'no event: refused');
is($redis->cmd('DBSIZE'), $size, 'nothing written by a refused call');

my $r = $redis->cmd('EVAL', $script, 5, 'q', 'c', 's', 'seen:y', 'seen:z',
                    '60', '00', 'r1', '', '', 'y', '00', 'r2', '', '', 'z');
is_deeply($r, [1, 1], 'two events in one call: an answer each');

is_deeply([ $ng->alerts ], [], 'no alerts in the error log');

done_testing();
