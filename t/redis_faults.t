# Redis down, restarted, stalled, with AUTH, with SELECT, over a unix
# socket: nothing is acknowledged that Redis did not confirm (503 +
# Retry-After), and the module reconnects by itself (SPEC 3, 9).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use StripeSync::Test;

require_module();

my $SECRET = 'whsec_faults_0123456789';

my $dir = temp_dir('faults');

sub event {
    my ($id) = @_;
    return make_event(type => 'invoice.payment_failed', id => $id, object => {
        id => unique_id('in'), object => 'invoice', customer => 'cus_F',
        customer_email => 'f@example.org', attempt_count => 1,
        billing_reason => 'subscription_cycle', amount_due => 500,
        currency => 'eur', status => 'open' });
}

sub hook {
    my ($ng, $path) = @_;
    return sub { post_event($ng->url($path // '/hook'), $_[0],
                            secret => $SECRET, %{ $_[1] || {} }) };
}

sub unavailable {
    my ($res, $name, $ng) = @_;
    my $ok = is($res->{status}, 503, "$name: 503");
    $ok &= like($res->{headers}{'retry-after'} // '', qr/^\d+$/,
                "$name: Retry-After");
    diag_response($res, $ng) unless $ok;
}

sub count_in_queue {
    my ($redis, $id, %o) = @_;
    return scalar grep { $_->{id} eq $id } @{ $redis->queue(%o) };
}

# Re-posts (signed anew each time, as Stripe retries) until not 503.
sub retry_until_accepted {
    my ($post, $body, $timeout) = @_;
    my ($res, $n) = (undef, 0);
    wait_until(sub {
        $n++;
        $res = $post->($body);
        return $res->{status} != 503;
    }, $timeout, 0.1);
    return ($res, $n);
}

# ------------------------------------------------ Redis stopped, restarted

my $redis = start_redis(debug => 1);
my $ux = start_redis(unixsocket => 1);
my $ng = start_nginx(
    http => "stripe_sync_redis 127.0.0.1:$redis->{port};
             stripe_sync_redis_timeout 500ms;",
    conf => "location = /hook { stripe_sync; stripe_sync_secret $SECRET; }
             location = /hook-unix {
                 stripe_sync_redis unix:$ux->{unixsocket};
                 stripe_sync; stripe_sync_secret $SECRET;
             }
             location = /status { stripe_sync_status; }");
my $post = hook($ng);

# events the workers sent to Redis in script calls, so far
sub events_sent {
    my $m = parse_prometheus(http_get($ng->url('/status'))->{content});
    return $m->{stripe_sync_redis_script_events_total} // 0;
}

my $res = $post->(event(unique_id('evt')));
is($res->{status}, 200, 'Redis up: 200') or diag_response($res, $ng);

$redis->kill;
my $e1 = unique_id('evt');
$res = $post->(event($e1));
unavailable($res, 'Redis killed', $ng);
ok($res->{elapsed} < tmo(1.5), sprintf 'answered in %.2fs', $res->{elapsed});
$res = $post->(event($e1));
unavailable($res, 'Redis still down', $ng);

$redis->start;    # same port, empty
my $n;
($res, $n) = retry_until_accepted($post, event($e1), tmo(5));
is($res->{status}, 200, "Redis back: the retried event is accepted (try $n)")
    or diag_response($res, $ng);
is_deeply($res->{json}, { received => 1 }, 'accepted as new, not duplicate');
is(count_in_queue($redis, $e1), 1, 'queued once');

# ---------------------------------------------------------- Redis stalled

{
    my $e2 = unique_id('evt');
    my $sleeper = $redis->cmd_nowait('DEBUG', 'SLEEP', 3);
    ok(wait_until(sub { $redis->stalled(0.2) }, tmo(2)), 'Redis stalled');
    $res = $post->(event($e2));
    unavailable($res, 'Redis slower than stripe_sync_redis_timeout 500ms', $ng);
    ok($res->{elapsed} >= 0.4 && $res->{elapsed} < tmo(1.5),
       sprintf '503 after the timeout (%.2fs)', $res->{elapsed});
    my $r2 = $post->(event(unique_id('evt')));
    unavailable($r2, 'a second request while stalled', $ng);

    my $pong = eval { $sleeper->read_reply(tmo(6)) };
    is($pong, 'OK', 'DEBUG SLEEP over');

    ($res, $n) = retry_until_accepted($post, event($e2), tmo(5));
    is($res->{status}, 200, "after the stall, the retry is 200 (try $n)")
        or diag_response($res, $ng);
    ok($res->{json}{received}, 'received (duplicate allowed: the script ran late)');
    is(count_in_queue($redis, $e2), 1, 'the stalled event is queued exactly once');

    my $e3 = unique_id('evt');
    ($res, $n) = retry_until_accepted($post, event($e3), tmo(5));
    is_deeply($res->{json}, { received => 1 },
              "a new event after the stall gets its own reply (try $n)")
        or diag_response($res, $ng);
    is(count_in_queue($redis, $e3), 1, 'queued');
}

# ------------------------------------- the client goes away while parked

{
    my $mark = $ng->error_log_mark;
    my $sent0 = events_sent();
    my $sleeper = $redis->cmd_nowait('DEBUG', 'SLEEP', 1);
    ok(wait_until(sub { $redis->stalled(0.2) }, tmo(2)), 'Redis stalled');
    my @gone = map { unique_id('evt') } 1 .. 5;
    raw_http(port => $ng->port, close_after_send => 1,
             data => raw_post('/hook', event($_), secret => $SECRET)) for @gone;
    # and one that hangs up in the middle of its body
    my $half = raw_post('/hook', event(unique_id('evt')), secret => $SECRET);
    raw_http(port => $ng->port, close_after_send => 1,
             data => substr($half, 0, length($half) - 50));
    eval { $sleeper->read_reply(tmo(5)) };
    my $e = unique_id('evt');
    ($res, $n) = retry_until_accepted($post, event($e), tmo(5));
    is_deeply($res->{json}, { received => 1 },
              'clients that hung up did not hurt the worker')
        or diag_response($res, $ng);
    # the first went to Redis before its client hung up; the others
    # waited for that call's reply (a group commit) and were dropped with
    # their requests: never acknowledged, Stripe sends them again
    my @count = map { count_in_queue($redis, $_) } @gone;
    my $in = grep { $_ == 1 } @count;
    ok(!(grep { $_ > 1 } @count), "hung-up events: none queued twice "
       . "($in of 5 queued)");
    is(events_sent() - $sent0, $in + 1,
       'what went to Redis is what was queued: the dropped ones were never '
       . 'sent');
    my @a = $ng->alerts($mark);
    ok(!@a, 'no [alert]') or diag(join "\n", @a);
}

# ---------------------------------------------------------- unix socket

{
    my $e = unique_id('evt');
    $res = post_event($ng->url('/hook-unix'), event($e), secret => $SECRET);
    is_deeply($res->{json}, { received => 1 }, 'unix socket: 200')
        or diag_response($res, $ng);
    is(count_in_queue($ux, $e), 1, 'queued in the unix-socket Redis');
    is(count_in_queue($redis, $e), 0, 'not in the TCP one');
}

my @alerts = $ng->alerts;
ok(!@alerts, 'no [alert]/[crit]/[emerg]') or diag(join "\n", @alerts);

# ----------------------------------- Redis not there when nginx starts

{
    my $port = free_port();
    my $late = start_nginx(
        http => "stripe_sync_redis 127.0.0.1:$port;
                 stripe_sync_redis_timeout 500ms;",
        conf => "location = /hook { stripe_sync; stripe_sync_secret $SECRET; }");
    my $lp = hook($late);
    my $e = unique_id('evt');
    $res = $lp->(event($e));
    unavailable($res, 'Redis never up', $late);
    ok($res->{elapsed} < tmo(1.5), sprintf 'answered in %.2fs', $res->{elapsed});

    my $r = start_redis(port => $port);
    ($res, $n) = retry_until_accepted($lp, event($e), tmo(5));
    is_deeply($res->{json}, { received => 1 },
              "Redis appears later: accepted (try $n)")
        or diag_response($res, $late);
    is(count_in_queue($r, $e), 1, 'queued');
    $late->stop;
}

# ------------------------------------------------------- AUTH and SELECT

{
    my $pw = start_redis(password => 's3kret-pw');
    spew("$dir/good.pass", "s3kret-pw\n", 0600);
    spew("$dir/bad.pass", "not-the-password\n", 0600);

    my $a = start_nginx(
        http => "stripe_sync_redis 127.0.0.1:$pw->{port};
                 stripe_sync_redis_password_file $dir/good.pass;",
        conf => "location = /hook { stripe_sync; stripe_sync_secret $SECRET; }
                 location = /hook-db3 {
                     stripe_sync_redis_db 3;
                     stripe_sync; stripe_sync_secret $SECRET;
                 }");
    my $e = unique_id('evt');
    $res = post_event($a->url('/hook'), event($e), secret => $SECRET);
    is_deeply($res->{json}, { received => 1 }, 'AUTH with the password file')
        or diag_response($res, $a);
    is(count_in_queue($pw, $e), 1, 'queued (db 0)');

    my $e3 = unique_id('evt');
    $res = post_event($a->url('/hook-db3'), event($e3), secret => $SECRET);
    is_deeply($res->{json}, { received => 1 }, 'stripe_sync_redis_db 3')
        or diag_response($res, $a);
    is(count_in_queue($pw, $e3, db => 3), 1, 'queued in db 3');
    is(count_in_queue($pw, $e3), 0, 'not in db 0');
    is($pw->cmd_db(3, 'EXISTS', $pw->key("seen:$e3")), 1, 'seen key in db 3');

    my $b = start_nginx(
        http => "stripe_sync_redis 127.0.0.1:$pw->{port};
                 stripe_sync_redis_timeout 500ms;",
        conf => "location = /hook-wrongpw {
                     stripe_sync_redis_password_file $dir/bad.pass;
                     stripe_sync; stripe_sync_secret $SECRET;
                 }
                 location = /hook-nopw { stripe_sync; stripe_sync_secret $SECRET; }");
    my $mark = $b->error_log_mark;
    for my $path ('/hook-wrongpw', '/hook-nopw') {
        my $ew = unique_id('evt');
        $res = post_event($b->url($path), event($ew), secret => $SECRET);
        unavailable($res, $path, $b);
        is(count_in_queue($pw, $ew), 0, "$path: nothing queued");
    }
    like($b->error_log_since($mark), qr/AUTH|password|WRONGPASS|NOAUTH/i,
         'error.log says what is wrong (auth)')
        or diag($b->error_log_tail(20));
}

finish();
