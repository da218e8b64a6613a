# Redis Sentinel (docs/deployment.md): a primary and two replicas (AOF,
# appendfsync always), three sentinels (quorum 2, down-after 2.5 s), two
# nginx with stripe_sync_redis_sentinel and stripe_sync_redis_wait_replicas
# 1, two consumers with redis_sentinels draining into a fake webhook
# receiver. A Stripe-like sender posts events to both nginx (some a second
# time, to the other one, after their 200), the primary is SIGKILLed
# mid-stream, the sentinels promote a replica, the sender retries the 503s.
#
# At the end every acknowledged event is delivered once at the receiver,
# none is lost and none queued twice. A quarter of the events goes to a
# location without WAIT: an event the old primary acknowledged but had not
# replicated yet may be lost there (asynchronous replication): counted, and
# a TODO test, not a failure. The failover gap (first to last 503 around the
# kill) and WAIT's latency cost are printed with diag.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use HTTP::Tiny;
use IO::Handle;
use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time sleep);
use StripeSync::Test;
use StripeSync::Fake;

require_module();
require_tool();

my $NAME    = 'mymaster';
my $SECRET  = 'whsec_sentinel_0123456789abcdef';
my $P       = 'ha';
my $EVENTS  = 360;       # over SEND_S seconds, from SENDERS workers
my $SEND_S  = 12;
my $SENDERS = 6;
my $KILL_AT = 5;         # seconds into the stream
my $DUP     = 0.15;      # sent again to the other nginx after the 200

my $dir = temp_dir('sentinel');

# ------------------------------------------------------------- topology ---

sub node {
    my (@args) = @_;
    # AOF fsynced per write; no 5 s wait for more replicas before a sync
    return start_redis(appendonly => 'always',
        args => [ '--repl-diskless-sync-delay', '0', @args ]);
}

sub conn {
    my ($port, $timeout) = @_;
    return StripeSync::Test::RESP->new(port => $port, timeout => $timeout // 2);
}

sub ask {
    my ($port, @cmd) = @_;
    my $r = eval { my $c = conn($port, 1); my $x = $c->command(@cmd); $c->close; $x };
    return $r;
}

sub start_sentinel {
    my ($k, $primary) = @_;
    my $port = free_port();
    my $d = temp_dir("sentinel$k");
    spew("$d/sentinel.conf", join "\n",
        "port $port", "bind 127.0.0.1", "dir $d", "logfile $d/sentinel.log",
        "sentinel monitor $NAME 127.0.0.1 $primary 2",
        # 1 s once made a loaded CI machine's stalled new primary look
        # down too: a second failover, to a replica without the consumers'
        # last writes, and events delivered twice (docs/deployment.md)
        "sentinel down-after-milliseconds $NAME 2500",
        "sentinel failover-timeout $NAME 5000",
        "sentinel parallel-syncs $NAME 2", '');
    # the redis-sentinel package's binary is this one under another name
    my $p = spawn_process(name => "sentinel$k", dir => $d,
        cmd => [ 'redis-server', "$d/sentinel.conf", '--sentinel' ]);
    ok(wait_until(sub { (ask($port, 'PING') // '') eq 'PONG' }, tmo(10)),
       "sentinel $k up on $port") or diag(slurp("$d/sentinel.log"));
    return { port => $port, proc => $p, dir => $d };
}

# [host, port] the sentinels name as the primary, from the first answering
sub primary_of {
    my (@s) = @_;
    for my $s (@s) {
        my $r = ask($s->{port}, 'SENTINEL', 'get-master-addr-by-name', $NAME);
        return $r if ref $r eq 'ARRAY';
    }
    return undef;
}

my $t_start = time;

my $primary = node();
my @replicas = map { node('--replicaof', '127.0.0.1', $primary->port) } 1, 2;
ok(wait_until(sub {
    !grep { (ask($_->port, 'INFO', 'replication') // '') !~ /master_link_status:up/ }
        @replicas }, tmo(15)), 'both replicas in sync');

my @S = map { start_sentinel($_, $primary->port) } 1 .. 3;

# every sentinel sees the replicas and the others: a failover can happen
ok(wait_until(sub {
    !grep {
        my $q = ask($_->{port}, 'SENTINEL', 'ckquorum', $NAME) // '';
        my $r = ask($_->{port}, 'SENTINEL', 'replicas', $NAME);
        !("$q" =~ /^OK 3 usable/ && ref $r eq 'ARRAY' && @$r == 2)
    } @S }, tmo(20), 0.1), 'sentinels: quorum reachable, two replicas known')
    or diag(join "\n", map { slurp("$_->{dir}/sentinel.log") } @S);

my $sentinels = join ' ', map { "127.0.0.1:$_->{port}" } @S;

my @ng = map {
    start_nginx(workers => 2,
        http => "stripe_sync_redis_sentinel $sentinels name=$NAME;
                 stripe_sync_redis_timeout 1s;
                 stripe_sync_redis_wait_replicas 1 300ms;
                 stripe_sync_prefix $P;",
        conf => "location = /stripe/webhook {
                     stripe_sync; stripe_sync_secret $SECRET;
                 }
                 location = /stripe/nowait {
                     stripe_sync_redis_wait_replicas 0;
                     stripe_sync; stripe_sync_secret $SECRET;
                 }
                 location = /stripe/status { stripe_sync_status; }")
} 1, 2;

my $wh = StripeSync::Fake->new(api => 'webhook', secret => 'whsec_receiver_ha_0123');
my $wh_secret = write_secret($dir, 'webhook.secret', $wh->secret . "\n");

my @consumers = map {
    start_consumer(name => "consumer-$_", dir => $dir, config => {
        redis_sentinels => [ map { "127.0.0.1:$_->{port}" } @S ],
        redis_sentinel_name => $NAME,
        prefix => $P, consumer_id => "ha-$_", heartbeat => 2,
        concurrency => 8, shutdown_grace => 5,
        retry => { max_attempts => 30, base_delay => 1, max_delay => 2 },
        provider => { type => 'webhook', url => $wh->url('/deliver'),
                      secret_file => $wh_secret, timeout => 5 },
        rules => [ { on => 'payment_failed', tag => ['dunning'] } ],
    })
} 'a', 'b';

diag(sprintf 'topology up in %.1f s: primary %d, replicas %d %d, sentinels %s',
     time - $t_start, $primary->port, (map { $_->port } @replicas), $sentinels);

# ---------------------------------------------------------- the events ---

my %sent;    # id -> event

sub event {
    my ($i, $path) = @_;
    my $id = unique_id('evt');
    my $body = make_event(type => 'invoice.payment_failed', id => $id, object => {
        id => "in_HA$i" . int(rand 1e9), object => 'invoice',
        customer => 'cus_HA' . ($i % 40), customer_email => "ha$i\@example.org",
        attempt_count => 1, billing_reason => 'subscription_cycle',
        amount_due => 2900, currency => 'eur', status => 'open' });
    return $sent{$id} = { i => $i, id => $id, body => $body, path => $path };
}

sub url_of {
    my ($ng, $path) = @_;
    return $ng[$ng]->url($path ? '/stripe/nowait' : '/stripe/webhook');
}

# ----------------------------------------------- WAIT's cost, measured ---

{
    my (%ms, $bad);
    for my $k (1 .. 40) {
        my $path = $k % 2;
        my $e = event(-$k, $path);
        my $r = post_event(url_of(0, $path), $e->{body}, secret => $SECRET);
        $bad++ unless $r->{status} == 200;
        push @{ $ms{$path} }, 1000 * $r->{elapsed};
        $e->{acked} = 1 if $r->{status} == 200;
    }
    my $median = sub { my @v = sort { $a <=> $b } @{ $_[0] }; $v[ @v / 2 ] };
    ok(!$bad, 'before the failover every request is 200');
    diag(sprintf 'WAIT 1 cost (sequential requests, loopback): median %.2f ms '
         . 'with, %.2f ms without', $median->($ms{0}), $median->($ms{1}));
}

# ----------------------------------------------------------- the sender ---

my @events = map { event($_, $_ % 4 == 3 ? 1 : 0) } 0 .. $EVENTS - 1;
my $t0 = time + 0.5;
$_->{due} = $t0 + $_->{i} * $SEND_S / $EVENTS for @events;
my $deadline = $t0 + $SEND_S + tmo(40);

# One worker: its share of the events in order, each at its due time;
# every non-2xx answer and connection error retried after 50 ms doubling
# to 400 ms, signed anew, to the other nginx (as a load balancer would);
# some sent again after their 200, to the other nginx. One JSON line per
# attempt.
sub sender_worker {
    my ($k) = @_;
    srand($$ ^ time);
    my $ht = HTTP::Tiny->new(timeout => 5, keep_alive => 0);
    open my $log, '>>', "$dir/attempts.$k" or die "attempts.$k: $!";
    $log->autoflush(1);
    my $deliver = sub {
        my ($e, $ng, $dup) = @_;
        my ($try, $wait) = (0, 0.05);
        while (time < $deadline) {
            $try++;
            my $t = time;
            my $r = $ht->request('POST', url_of($ng, $e->{path}), { headers => {
                'Content-Type' => 'application/json; charset=utf-8',
                'Stripe-Signature' => sign_header($e->{body}, $SECRET) },
                content => $e->{body} });
            my $j = eval { json_decode($r->{content} // '') } || {};
            my $kind = $r->{status} == 599 ? 'error' : $r->{status} != 200
                     ? $r->{status} : $j->{duplicate} ? 'duplicate' : 'queued';
            print {$log} json_encode({ id => $e->{id}, dup => $dup, try => $try,
                ng => $ng, t => $t, t2 => time, status => $r->{status} + 0,
                kind => "$kind", nowait => $e->{path} }) . "\n";
            return 1 if $r->{status} == 200;
            sleep $wait;
            $wait = $wait * 2 > 0.4 ? 0.4 : $wait * 2;
            $ng = 1 - $ng;
        }
        return 0;
    };
    my @later;
    for my $e (grep { $_->{i} % $SENDERS == $k } @events) {
        while (@later && $later[0][0] <= $e->{due}) {
            my $d = shift @later;
            sleep $d->[0] - time if $d->[0] > time;
            $deliver->($d->[1], $d->[2], 1);
        }
        sleep $e->{due} - time if $e->{due} > time;
        my $ng = $e->{i} % 2;
        $deliver->($e, $ng, 0) or next;
        push @later, [ time + 0.1 + rand 1, $e, 1 - $ng ] if rand() < $DUP;
        @later = sort { $a->[0] <=> $b->[0] } @later;
    }
    for my $d (@later) {
        sleep $d->[0] - time if $d->[0] > time;
        $deliver->($d->[1], $d->[2], 1);
    }
}

my @senders = map { my $k = $_;
    spawn_sub(name => "sender$k", dir => $dir, code => sub { sender_worker($k) })
} 0 .. $SENDERS - 1;

# --------------------------------------------------------------- the kill ---

sleep 0.05 while time < $t0 + $KILL_AT;
my $old = $primary->port;
my $t_kill = time;
$primary->kill;
diag(sprintf 'primary %d SIGKILLed %.1f s into the stream', $old, $t_kill - $t0);

my $new;
ok(wait_until(sub {
    my $a = primary_of(@S);
    $new = $a->[1] if $a && $a->[1] != $old;
    $new }, tmo(30), 0.02), 'the sentinels promoted a replica')
    or diag(join "\n", map { slurp("$_->{dir}/sentinel.log") } @S);
my $t_promoted = time;
$new //= 0;
my ($promoted) = grep { $_->port == $new } @replicas;
ok($promoted, "the new primary is a replica ($new)");
is(ref(ask($new, 'ROLE')) && ask($new, 'ROLE')->[0], 'master', 'ROLE: master');
diag(sprintf 'the sentinels named %d %.2f s after the kill', $new, $t_promoted - $t_kill);

ok(wait_until(sub { !grep { $_->alive } @senders }, $deadline - time + tmo(10), 0.1),
   'the sender finished');

# ------------------------------------------------------------ draining ---

my @acked = grep { $_->{acked} } values %sent;    # the latency probes
my (%answers, @att);
for my $f (glob "$dir/attempts.*") {
    for my $l (split /\n/, slurp($f) // '') {
        my $a = eval { json_decode($l) } or next;
        push @att, $a;
        $sent{ $a->{id} }{acked} = 1 if $a->{status} == 200;
        $answers{ $a->{kind} }++;
    }
}
@acked = grep { $_->{acked} } values %sent;
my @unacked = grep { !$_->{acked} } @events;
is(scalar @unacked, 0, 'every event was acknowledged in the end (200)')
    or diag('not acknowledged: ' . join ' ', map { $_->{id} } @unacked[0 .. ($#unacked < 9 ? $#unacked : 9)]);
diag('answers: ' . join ', ', map { "$_ $answers{$_}" } sort keys %answers);

sub deliveries {
    my %d;
    for my $r ($wh->requests(method => 'POST')) {
        next unless $r->{status} == 200 && $r->{sig_valid};
        $d{ $r->{headers}{'x-stripe-sync-event'} // '' }++;
    }
    return \%d;
}

my $del;
ok(wait_until(sub {
    $del = deliveries();
    !grep { !$del->{ $_->{id} } } grep { !$_->{path} } @acked;
}, tmo(40), 0.2), 'every event acknowledged with WAIT reached the receiver');
sleep 1.5;    # a late second delivery would show now
$del = deliveries();

my @lost = grep { !$del->{ $_->{id} } } @acked;
my @twice = grep { ($del->{ $_->{id} } // 0) > 1 } @acked;
my @lost_wait = grep { !$_->{path} } @lost;
my @lost_nowait = grep { $_->{path} } @lost;
my %known = map { $_->{id} => 1 } values %sent;

is(scalar @lost_wait, 0, 'with WAIT: no acknowledged event lost')
    or diag('lost: ' . join ' ', map { $_->{id} } @lost_wait);
TODO: {
    local $TODO = 'without WAIT an acknowledged, unreplicated event can be '
                . 'lost at failover (asynchronous replication)';
    is(scalar @lost_nowait, 0, 'without WAIT: no acknowledged event lost');
}
is(scalar @twice, 0, 'no event delivered twice (none queued twice)')
    or diag('twice: ' . join ' ', map { "$_->{id} x$del->{$_->{id}}" } @twice);
is(scalar(grep { !$known{$_} } keys %$del), 0, 'nothing delivered that was not sent');
diag(sprintf '%d events acknowledged (%d without WAIT), %d delivered, lost: %d '
     . 'with WAIT, %d without', scalar @acked, scalar(grep { $_->{path} } @acked),
     scalar keys %$del, scalar @lost_wait, scalar @lost_nowait);

# ------------------------------------------------- the failover gap ---

{
    my @u = sort { $a->{t} <=> $b->{t} }
            grep { $_->{status} != 200 && $_->{t2} >= $t_kill - 0.1 } @att;
    my @ok_after = sort { $a->{t2} <=> $b->{t2} }
                   grep { $_->{status} == 200 && $_->{t} > $t_kill } @att;
    my $first = @u ? $u[0]{t} - $t_kill : 0;
    my $last = @u ? $u[-1]{t2} - $t_kill : 0;
    my $first_ok = @ok_after ? $ok_after[0]{t2} - $t_kill : -1;
    my %why;
    $why{ $_->{status} }++ for @u;
    ok(@u, 'the module answered 503 while there was no primary');
    ok(!grep({ $_->{status} != 503 } @u), 'only 503s, never another error')
        or diag(join ', ', map { "$_: $why{$_}" } keys %why);
    diag(sprintf 'failover gap: 503s from %.2f s to %.2f s after the kill '
         . '(%d answers), gap %.2f s; first 200 after the kill at %.2f s',
         $first, $last, scalar @u, $last - $first, $first_ok);
    ok($last - $first < tmo(15), 'the gap is bounded');
}

# ------------------------------------------- the rest of the stack ---

for my $k (0, 1) {
    my $m = parse_prometheus(http_get($ng[$k]->url('/stripe/status'))->{content});
    ok(($m->{stripe_sync_sentinel_failovers_total} // 0) >= 1,
       "nginx $k: stripe_sync_sentinel_failovers_total counts the failover");
    diag(sprintf 'nginx %d: lookups %d, sentinel errors %d, failovers %d, '
         . 'unreplicated %d, redis errors %d', $k,
         map { $m->{"stripe_sync_$_"} // -1 } qw(sentinel_lookups_total
         sentinel_errors_total sentinel_failovers_total
         redis_unreplicated_total redis_errors_total));
    like($ng[$k]->error_log, qr/moved from 127\.0\.0\.1:$old to 127\.0\.0\.1:$new/,
         "nginx $k: error.log says where the primary went");
    my @a = $ng[$k]->alerts;
    ok(!@a, "nginx $k: no [alert]/[crit]") or diag(join "\n", @a);
}

for my $c (@consumers) {
    ok($c->alive, "$c->{name} still running");
    like($c->output, qr/\Q127.0.0.1:$new\E/, "$c->{name} moved to the new primary")
        or diag($c->output);
}

{
    my $c = conn($new, 5);
    is($c->command('LLEN', "{$P}:queue"), 0, 'the queue is empty');
    my $keys = $c->command('KEYS', "{$P}:processing:*") || [];
    is(scalar(grep { $c->command('LLEN', $_) } @$keys), 0,
       'no job left in a processing list');
    is($c->command('LLEN', "{$P}:dead"), 0, 'no dead letter');
    $c->close;
}

# the killed primary comes back: the sentinels make it a replica
$primary->start;
ok(wait_until(sub { my $r = ask($old, 'ROLE'); ref $r && $r->[0] eq 'slave' },
              tmo(20), 0.1), 'the old primary returns as a replica');
my $e = event(99999, 0);
my $r = post_event(url_of(0, 0), $e->{body}, secret => $SECRET);
is($r->{status}, 200, 'and the module still writes to the new primary')
    or diag_response($r, $ng[0]);
is(ask($new, 'EXISTS', "{$P}:seen:$e->{id}"), 1, 'seen on the new primary');

$ng[1]->reload(wait_old => 1);
$r = post_event(url_of(1, 0), event(99998, 0)->{body}, secret => $SECRET);
is($r->{status}, 200, 'after a reload too') or diag_response($r, $ng[1]);

$_->stop(sig => 'TERM', timeout => tmo(10)) for @consumers;
$_->stop for @ng;
diag(sprintf 'failover part ran %.1f s', time - $t_start);

# ========================================== a sentinel that is scripted ===
#
# Answers SENTINEL get-master-addr-by-name from the file <dir>/answer
# ("host port", or empty: nil), wants AUTH with <dir>/password when that
# file exists, takes SUBSCRIBE and never publishes (so only READONLY, a
# lost connection or ROLE can move the module). Every lookup is a line in
# <dir>/lookups.

sub fake_sentinel {
    my ($tag, $password) = @_;
    my $d = temp_dir("fake-sentinel-$tag");
    spew("$d/answer", '');
    spew("$d/password", $password) if defined $password;
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
        Proto => 'tcp', Listen => 64, ReuseAddr => 1) or die "listen: $!";
    my $port = $srv->sockport;
    my $p = spawn_sub(name => "fake-sentinel-$tag", dir => $d,
                      code => sub { fake_sentinel_loop($srv, $d) });
    close $srv;
    return { port => $port, dir => $d, proc => $p,
             answer => sub { spew("$d/answer", $_[0] // '') },
             lookups => sub { scalar(() = (slurp("$d/lookups") // '') =~ /\n/g) } };
}

sub fake_sentinel_loop {
    my ($srv, $d) = @_;
    my $sel = IO::Select->new($srv);
    my %c;
    my $bulk = sub { '$' . length($_[0]) . "\r\n$_[0]\r\n" };
    while (1) {
        for my $fh ($sel->can_read(1)) {
            if ($fh == $srv) {
                my $n = $srv->accept or next;
                $sel->add($n);
                $c{$n} = { buf => '', auth => 0 };
                next;
            }
            my $st = $c{$fh};
            if (!sysread($fh, $st->{buf}, 65536, length $st->{buf})) {
                $sel->remove($fh);
                delete $c{$fh};
                close $fh;
                next;
            }
            while ($st->{buf} =~ /^\*(\d+)\r\n/) {
                my ($n, $pos, @a) = ($1, length("*$1\r\n"));
                for (1 .. $n) {
                    last unless substr($st->{buf}, $pos) =~ /^\$(\d+)\r\n/;
                    my $len = $1;
                    my $start = $pos + length("\$$len\r\n");
                    last if length($st->{buf}) < $start + $len + 2;
                    push @a, substr($st->{buf}, $start, $len);
                    $pos = $start + $len + 2;
                }
                last if @a < $n;
                substr($st->{buf}, 0, $pos, '');
                my $cmd = uc($a[0] // '');
                my $pw = -e "$d/password" ? slurp("$d/password") : undef;
                my $out;
                if ($cmd eq 'AUTH') {
                    $st->{auth} = defined $pw && $a[-1] eq $pw;
                    $out = $st->{auth} ? "+OK\r\n" : "-WRONGPASS invalid "
                         . "username-password pair or user is disabled.\r\n";
                } elsif (defined $pw && !$st->{auth}) {
                    $out = "-NOAUTH Authentication required.\r\n";
                } elsif ($cmd eq 'PING') {
                    $out = "+PONG\r\n";
                } elsif ($cmd eq 'SENTINEL' && lc($a[1] // '') eq 'get-master-addr-by-name') {
                    my ($h, $p) = split ' ', slurp("$d/answer") // '';
                    open my $l, '>>', "$d/lookups";
                    print {$l} "$a[2]\n";
                    close $l;
                    $out = defined $p ? '*2' . "\r\n" . $bulk->($h) . $bulk->($p)
                                      : "*-1\r\n";
                } elsif ($cmd eq 'SUBSCRIBE') {
                    $out = "*3\r\n" . $bulk->('subscribe') . $bulk->($a[1]) . ":1\r\n";
                } else {
                    $out = "-ERR unknown command '$a[0]'\r\n";
                }
                syswrite $fh, $out;
            }
        }
    }
}

my $fx = node();
my $fy = node();
my $fr = node('--replicaof', '127.0.0.1', $fx->port);
my $f1 = fake_sentinel('1', 'sentinel-pw');
my $f2 = fake_sentinel('2', 'sentinel-pw');
my $spass = spew("$dir/sentinel.pass", "sentinel-pw\n", 0600);
my $sbad = spew("$dir/sentinel-bad.pass", "not-it\n", 0600);
my $fs = "127.0.0.1:$f1->{port} 127.0.0.1:$f2->{port}";

# the first knows no such primary, the second names a replica
$f2->{answer}->('127.0.0.1 ' . $fr->port);
my $fn = start_nginx(
    http => "stripe_sync_redis_sentinel $fs name=$NAME
                 sentinel_password_file=$spass;
             stripe_sync_redis_timeout 500ms; stripe_sync_prefix $P;",
    conf => "location = /hook { stripe_sync; stripe_sync_secret $SECRET; }
             location = /badauth {
                 stripe_sync_redis_sentinel $fs name=$NAME
                     sentinel_password_file=$sbad;
                 stripe_sync; stripe_sync_secret $SECRET;
             }");
my $hook = sub { post_event($fn->url($_[1] // '/hook'), $_[0]{body}, secret => $SECRET) };

ok(wait_until(sub { $fn->error_log =~ /is not the primary \(ROLE: slave\)/ }, tmo(5)),
   'a sentinel naming a replica: the module sees ROLE slave')
    or diag($fn->error_log_tail(20));
like($fn->error_log, qr/sentinel "127\.0\.0\.1:$f1->{port}" knows no primary named "$NAME"/,
     'a sentinel that knows no such primary is named in error.log');
$e = event(200000, 0);
$r = $hook->($e);
is($r->{status}, 503, 'no primary known: 503') or diag_response($r, $fn);
like($r->{headers}{'retry-after'} // '', qr/^\d+$/, 'with Retry-After');
is(ask($fx->port, 'EXISTS', "{$P}:seen:$e->{id}"), 0,
   'nothing written through the replica');
is(ask($fx->port, 'DBSIZE'), 0, 'the primary behind it is untouched');

# the second now names the primary
$f2->{answer}->('127.0.0.1 ' . $fx->port);
my $n;
ok(wait_until(sub { $n++; $hook->($e)->{status} == 200 }, tmo(5), 0.1),
   "the primary named: accepted (try $n)") or diag($fn->error_log_tail(20));
is(ask($fx->port, 'EXISTS', "{$P}:seen:$e->{id}"), 1, 'seen on the primary');

# the primary demoted under the module: READONLY, then a new lookup
my $mark = $fn->error_log_mark;
is(ask($fx->port, 'REPLICAOF', '127.0.0.1', $fy->port), 'OK', 'primary demoted (REPLICAOF)');
$f2->{answer}->('127.0.0.1 ' . $fy->port);
my $e2 = event(200001, 0);
$r = $hook->($e2);
is($r->{status}, 503, 'the demoted primary answers READONLY: 503') or diag_response($r, $fn);
like($fn->error_log_since($mark), qr/is no longer the primary \("READONLY/,
     'error.log: no longer the primary');
$n = 0;
ok(wait_until(sub { $n++; $hook->($e2)->{status} == 200 }, tmo(5), 0.1),
   "then the new primary takes it (try $n)") or diag($fn->error_log_tail(20));
is(ask($fy->port, 'EXISTS', "{$P}:seen:$e2->{id}"), 1, 'seen on the new primary');
like($fn->error_log_since($mark), qr/moved from 127\.0\.0\.1:${\ $fx->port} to 127\.0\.0\.1:${\ $fy->port}/,
     'error.log: the primary moved');

# a wrong sentinel password
$r = $hook->(event(200002, 0), '/badauth');
is($r->{status}, 503, 'wrong sentinel password: 503');
like($fn->error_log, qr/refused AUTH: WRONGPASS/, 'error.log: AUTH refused');
my @fa = $fn->alerts;
ok(!@fa, 'no [alert]/[crit]') or diag(join "\n", @fa);

# ------------------------------------------- the tool, behind Sentinel ---

my %tool = (redis_sentinels => [ "127.0.0.1:$f1->{port}", "127.0.0.1:$f2->{port}" ],
            redis_sentinel_name => $NAME, prefix => $P,
            redis_sentinel_password_file => $spass,
            provider => { type => 'log' });
spew("$dir/tool.conf", libconfig(\%tool));
my ($rc, $out) = run_tool('stats', '-c', "$dir/tool.conf", '--json');
is($rc, 0, 'stats: the primary the sentinels name') or diag($out);
($rc, $out) = run_tool('check', '-c', "$dir/tool.conf");
like($out, qr/^ok   redis \Q$NAME\E\@127\.0\.0\.1:${\ $fy->port}$/m,
     'check: names the primary found') or diag($out);

$f2->{answer}->('127.0.0.1 ' . $fx->port);    # now a replica of fy
($rc, $out) = run_tool('stats', '-c', "$dir/tool.conf");
is($rc, 1, 'stats: a sentinel naming a replica is refused');
like($out, qr/not the primary \(ROLE: slave\)/, 'and says why') or diag($out);

spew("$dir/tool-bad.conf", libconfig({ %tool, redis_sentinel_password_file => $sbad }));
($rc, $out) = run_tool('stats', '-c', "$dir/tool-bad.conf");
is($rc, 1, 'stats: wrong sentinel password');
like($out, qr/AUTH: WRONGPASS/, 'names AUTH') or diag($out);

# the consumer waits while no primary is named, then connects
my $cw = start_consumer(name => 'consumer-wait', dir => $dir, config => {
    %tool, consumer_id => 'ha-wait', heartbeat => 1 });
ok(wait_until(sub { $cw->output =~ /not the primary \(ROLE: slave\)/ }, tmo(10)),
   'consumer: a replica named, it waits') or diag($cw->output);
$f2->{answer}->('127.0.0.1 ' . $fy->port);
ok(wait_until(sub { $cw->output =~ /connected to \Q$NAME\E\@127\.0\.0\.1:${\ $fy->port}/ },
              tmo(10)), 'consumer: connected once the primary is named')
    or diag($cw->output);
is(scalar(() = $cw->output =~ /ROLE: slave/g), 1, 'the wait is logged once');
is($cw->stop(sig => 'TERM', timeout => tmo(10)), 0, 'consumer stopped');

diag(sprintf 'sentinel.t ran %.1f s', time - $t_start);

finish();
