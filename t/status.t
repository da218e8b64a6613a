# stripe_sync_status: Prometheus counters in shared memory, summed over
# workers; the latency histogram counts every webhook request (SPEC 3).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use StripeSync::Test;

require_module();

my $SECRET = 'whsec_status_0123456789';

my $redis = start_redis();
my $ng = start_nginx(
    workers => 2,
    listen_opts => 'reuseport',      # spread connections over both workers
    http => "stripe_sync_redis 127.0.0.1:$redis->{port};
             stripe_sync_redis_timeout 1s;
             log_format withpid '\$pid \$stripe_sync_result \$status';",
    conf => "location = /hook {
                 access_log %%PREFIX%%/hooks.log withpid;
                 stripe_sync; stripe_sync_secret $SECRET;
             }
             location = /status { stripe_sync_status; }");

sub event {
    my ($id, $type) = @_;
    return make_event(type => $type // 'invoice.payment_failed', id => $id,
        object => { id => "in_$id", object => 'invoice', customer => 'cus_S',
                    attempt_count => 1, status => 'open' });
}

sub status {
    my $r = http_get($ng->url('/status'));
    is($r->{status}, 200, 'status page 200') or diag_response($r, $ng);
    return ($r, parse_prometheus($r->{content}));
}

# for polling: no test output
sub metrics {
    return parse_prometheus(http_get($ng->url('/status'))->{content});
}

sub req { $_[0]->{qq(stripe_sync_requests_total{result="$_[1]"})} // 0 }

my %sent = (queued => 30, duplicate => 10, rejected => 8, ignored => 5);
my @ids = map { unique_id('evt') } 1 .. $sent{queued};
my $url = $ng->url('/hook');
my @jobs = (
    (map { { url => $url, body => event($_), secret => $SECRET } } @ids),
    (map { { url => $url, body => event($_), secret => 'whsec_wrong' } }
         map { unique_id('evt') } 1 .. $sent{rejected}),
    (map { { url => $url, secret => $SECRET,
             body => event($_, 'customer.source.created') } }
         map { unique_id('evt') } 1 .. $sent{ignored}),
);
my $res = post_parallel(\@jobs, concurrency => 20);
my $dres = post_parallel([ map { { url => $url, body => event($_),
                                   secret => $SECRET } } @ids[0 .. 9] ],
                         concurrency => 10);
my %got;
for (@$res, @$dres) {
    my $j = $_->{json} || {};
    my $k = $_->{status} == 400 ? 'rejected'
          : $j->{duplicate} ? 'duplicate' : $j->{ignored} ? 'ignored'
          : $j->{received} ? 'queued' : "status $_->{status}";
    $got{$k}++;
}
is_deeply(\%got, \%sent, 'responses as sent') or diag(explain($res->[0]));

my %pids;
wait_until(sub {
    %pids = ();
    my @l = split /\n/, $ng->access_log('hooks.log');
    $pids{ (split ' ', $_)[0] }++ for @l;
    return @l >= 53;
}, tmo(5));
ok(keys %pids >= 2, 'requests were served by both workers')
    or diag(explain(\%pids));

my ($r, $m) = status();
like($r->{headers}{'content-type'} // '', qr{^text/plain},
     'Content-Type text/plain');
for my $k (sort keys %sent) {
    is(req($m, $k), $sent{$k}, "requests_total{result=\"$k\"} = $sent{$k}");
}
is(req($m, 'unavailable'), 0, 'unavailable 0');
my $total = 0;
$total += $sent{$_} for keys %sent;
my $h = 'stripe_sync_request_duration_seconds';
is($m->{"${h}_count"}, $total, "histogram _count = $total requests");
my $sum_results = 0;
$sum_results += $m->{$_} for grep { /^stripe_sync_requests_total\{/ } keys %$m;
is($m->{"${h}_count"}, $sum_results, '_count = sum of requests_total');
ok(($m->{"${h}_sum"} // -1) > 0, '_sum > 0');
my @b = sort { $a->[0] <=> $b->[0] }
        map { /le="([^"]+)"/; [ $1 eq '+Inf' ? 9**9**9 : $1, $m->{$_} ] }
        grep { /^${h}_bucket\{/ } keys %$m;
ok(@b >= 2, 'histogram buckets');
ok(!(grep { $b[$_][1] < $b[$_ - 1][1] } 1 .. $#b), 'buckets cumulative');
is($b[-1][1], $total, 'le="+Inf" bucket = _count');
my $rej = 0;
$rej += $m->{$_} for grep { /^stripe_sync_rejected_total\{/ } keys %$m;
is($rej, $sent{rejected}, 'rejected_total by reason sums to rejected');
is($m->{stripe_sync_redis_errors_total}, 0, 'redis_errors_total 0');
ok(wait_until(sub { (metrics()->{stripe_sync_redis_connections} // -1) == 2 }, tmo(5)),
   'redis_connections 2 (one per worker)');

# every worker reports the same sums (new connections: either worker)
my %seen;
for (1 .. 10) {
    my $mm = metrics();
    $seen{ join ',', map { req($mm, $_) } qw(queued duplicate rejected ignored) }++;
}
is_deeply([keys %seen], [join ',', map { $sent{$_} } qw(queued duplicate rejected ignored)],
          'same counters whichever worker answers');

# Redis gone: unavailable, errors, connections 0
$redis->kill;
$res = post_event($url, event(unique_id('evt')), secret => $SECRET);
is($res->{status}, 503, 'Redis down: 503') or diag_response($res, $ng);
($r, $m) = status();
is(req($m, 'unavailable'), 1, 'unavailable 1');
ok($m->{stripe_sync_redis_errors_total} >= 1, 'redis_errors_total counts')
    or diag($r->{content});
ok(wait_until(sub { (metrics()->{stripe_sync_redis_connections} // -1) == 0 }, tmo(5)),
   'redis_connections 0');
is(metrics()->{"${h}_count"}, $total + 1, '_count + 1');

finish();
