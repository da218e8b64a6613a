# Reload and graceful quit with requests parked on Redis, and a burst of
# 2,000 events at 50 concurrent with duplicates: every request answered,
# nothing lost, nothing queued twice, no [alert] (SPEC 3, 4, 9).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use StripeSync::Test;

require_module();

my $SECRET = 'whsec_lifecycle_0123456789';
my $BURST  = $ENV{STRIPE_SYNC_BURST} || 2000;
my $DUPS   = int($BURST / 10);

my $redis = start_redis(debug => 1);
my $ng = start_nginx(
    workers => 2,
    listen_opts => 'reuseport',
    http => "stripe_sync_redis 127.0.0.1:$redis->{port};
             stripe_sync_redis_timeout 15s;",
    conf => "location = /hook { stripe_sync; stripe_sync_secret $SECRET; }");

sub event {
    my ($id) = @_;
    return make_event(type => 'invoice.payment_failed', id => $id, object => {
        id => "in_$id", object => 'invoice', customer => 'cus_L',
        customer_email => 'l@example.org', attempt_count => 1,
        billing_reason => 'subscription_cycle', amount_due => 700,
        currency => 'usd', status => 'open' });
}

sub jobs {
    my (@ids) = @_;
    return [ map { { url => $ng->url('/hook'), body => event($_),
                     secret => $SECRET } } @ids ];
}

# Ids queued, with their counts.
sub queue_counts {
    my %n;
    $n{ $_->{id} }++ for @{ $redis->queue };
    return \%n;
}

sub all_received {
    my ($name, $res, $ids) = @_;
    my @bad = grep { $_->{status} != 200
                     || !$_->{json} || !$_->{json}{received} } @$res;
    ok(!@bad, "$name: all " . scalar(@$res) . ' answered 200')
        or diag(join "\n", map { "$_->{status} $_->{content}" }
                           @bad[0 .. ($#bad < 4 ? $#bad : 4)]);
    my $q = queue_counts();
    my @lost = grep { ($q->{$_} // 0) != 1 } @$ids;
    ok(!@lost, "$name: each event queued exactly once")
        or diag('not queued once: ' . join(' ', map { "$_=" . ($q->{$_} // 0) }
                                           @lost[0 .. ($#lost < 9 ? $#lost : 9)]));
}

# Parks Redis for $s seconds and $n requests in nginx; returns the async
# handle, the sleeper connection and the ids.
sub park {
    my ($s, $n, $name) = @_;
    my $sleeper = $redis->cmd_nowait('DEBUG', 'SLEEP', $s);
    ok(wait_until(sub { $redis->stalled(0.2) }, tmo(2)), "$name: Redis stalled");
    my @ids = map { unique_id('evt') } 1 .. $n;
    my $h = post_async(jobs(@ids), concurrency => $n);
    my $st;
    ok(wait_until(sub { $st = $ng->stub_status; $st && $st->{writing} > $n },
                  tmo(2)),
       "$name: $n requests in flight") or diag(explain($st));
    return ($h, $sleeper, \@ids);
}

# warm-up: both workers connected
{
    my $h = post_parallel(jobs(map { unique_id('evt') } 1 .. 10),
                          concurrency => 10);
    is(scalar(grep { $_->{status} == 200 } @$h), 10, 'warm-up: 200s')
        or diag(explain($h->[0]));
}

# ------------------------------------------------------ reload in flight

{
    my $mark = $ng->error_log_mark;
    my ($h, $sleeper, $ids) = park(3, 20, 'reload');
    my @old = $ng->worker_pids;
    $ng->reload;
    ok($redis->stalled(0.2), 'reload done while Redis still asleep');
    # and more, on the new workers, still parked
    my @ids2 = map { unique_id('evt') } 1 .. 10;
    my $h2 = post_async(jobs(@ids2), concurrency => 10);

    my $res = $h->wait(tmo(20));
    all_received('in flight across reload', $res, $ids);
    all_received('sent to the new workers', $h2->wait(tmo(20)), \@ids2);
    ok($ng->wait_pids_gone(\@old, tmo(10)), 'old workers exited');
    my @alerts = $ng->alerts($mark);
    ok(!@alerts, 'reload: no [alert]') or diag(join "\n", @alerts);
    eval { $sleeper->read_reply(tmo(5)) };
}

# ---------------------------------------------------------- the burst

{
    my $mark = $ng->error_log_mark;
    my $before = $redis->queue_len;
    my @ids = map { unique_id('evt') } 1 .. $BURST;
    my $jobs = jobs(@ids);
    # every 10th distinct event sent twice more, interleaved
    my @all;
    for my $i (0 .. $#$jobs) {
        push @all, $jobs->[$i];
        push @all, { %{ $jobs->[$i - 5] } } if $i % 10 == 9;
    }
    my $t0 = time;
    my $res = post_parallel(\@all, concurrency => 50, timeout => tmo(120));
    my $dt = time - $t0;
    diag(sprintf '%d requests at 50 concurrent in %.1fs (%.0f/s)',
         scalar @all, $dt, @all / ($dt || 1));

    my @bad = grep { $_->{status} != 200 } @$res;
    is(scalar @bad, 0, 'burst: all 200')
        or diag(join "\n", map { "$_->{status} $_->{content}" }
                           @bad[0 .. ($#bad < 4 ? $#bad : 4)]);
    my $dups = grep { $_->{json} && $_->{json}{duplicate} } @$res;
    is($dups, $DUPS, "burst: $DUPS duplicates absorbed");
    # per id: exactly one response without "duplicate" (replies not mixed up)
    my %fresh;
    for my $i (0 .. $#all) {
        my $id = json_decode($all[$i]{body})->{id};
        $fresh{$id} += ($res->[$i]{json} && !$res->[$i]{json}{duplicate}) ? 1 : 0;
    }
    my @odd = grep { $fresh{$_} != 1 } @ids;
    ok(!@odd, 'burst: each id acknowledged as new exactly once')
        or diag('ids: ' . join(' ', map { "$_=$fresh{$_}" } @odd[0 .. ($#odd < 9 ? $#odd : 9)]));
    is($redis->queue_len - $before, $BURST, "burst: queue grew by $BURST");
    my $q = queue_counts();
    is(scalar(grep { ($q->{$_} // 0) == 1 } @ids), $BURST,
       "burst: $BURST distinct ids, each once");
    my @alerts = $ng->alerts($mark);
    ok(!@alerts, 'burst: no [alert]') or diag(join "\n", @alerts);
}

# ------------------------------------------------- graceful quit in flight

{
    my $mark = $ng->error_log_mark;
    my ($h, $sleeper, $ids) = park(2, 20, 'quit');
    my @workers = $ng->worker_pids;
    my $st = $ng->quit(tmo(20));
    is($st, 0, 'nginx -s quit: master exited 0');
    all_received('in flight across quit', $h->wait(tmo(10)), $ids);
    ok(!(grep { kill 0, $_ } @workers), 'workers gone');
    my @alerts = $ng->alerts($mark);
    ok(!@alerts, 'quit: no [alert]') or diag(join "\n", @alerts);
    eval { $sleeper->read_reply(tmo(5)) };
}

finish();
