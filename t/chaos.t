# Chaos (issue 6): the whole pipeline under faults, every event accounted
# for. A Stripe-like sender (t/lib/StripeSync/Chaos.pm) delivers ~450
# events of every kind, shuffled, to two nginx instances sharing one Redis
# (appendonly yes, appendfsync always), retrying every non-2xx answer and
# lost connection with a backoff, re-signing each attempt, delivering ~10%
# of them again later, mixing in ~5% forged events (bad signatures). Two
# consumers drain the queue into a fake Kit (OAuth: purchases recorded)
# that answers 5xx, 429 (with Retry-After), slow, truncated and dropped
# responses, 503 or a timeout after recording a purchase (the consumer
# must find it at Kit, not post it again), and 422 for a few blocked
# customers; the Stripe API fake
# answers 5xx, 429 and slowly too. Meanwhile: an nginx worker is killed
# with SIGKILL (while Redis stalls, so it dies with requests in hand),
# Redis is killed with SIGKILL and restarted on its AOF (twice), both nginx
# are reloaded, a consumer is killed with SIGKILL while it holds jobs and
# restarted under another id (the other consumer takes its jobs back by
# the heartbeat).
#
# At the end, once idle: every validly signed event is in Redis; every
# fact was queued once and its job ended; a done job's effects are at Kit
# (each purchase exactly once by transaction_id; tags and the sequence at
# least once); the dead letters are exactly the injected permanent
# failures; no forged event left a trace; nothing lost, nothing twice.
#
# CHAOS_EVENTS=N and CHAOS_SEED=N change the size and the seed (printed);
# CHAOS_HEARTBEAT (2 s) and CHAOS_REDIS_DOWN (1 s) the consumers' heartbeat
# and how long each Redis kill lasts: an outage (plus the consumers'
# reconnect backoff) longer than 2 heartbeats can make a consumer take a
# live one's jobs (docs/reliability.md, "Known gaps").
# The larger run: bench/chaos (make chaos).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use StripeSync::Test;
use StripeSync::Chaos;

require_module();
require_tool();

# under valgrind (make test-valgrind) nginx is ~20 times slower: fewer
# events, more time
my $vg = valgrind_mode();
my $run = StripeSync::Chaos->new(
    events       => $ENV{CHAOS_EVENTS} // ($vg ? 120 : 450),
    send_seconds => $vg ? 40 : 25,
    ($vg ? (deadline => tmo(60), idle_timeout => tmo(30)) : ()),
    heartbeat    => $ENV{CHAOS_HEARTBEAT} // 2,
    redis_down   => $ENV{CHAOS_REDIS_DOWN} // 1,
    (defined $ENV{CHAOS_SEED} ? (seed => $ENV{CHAOS_SEED}) : ()),
    log          => sub { note @_ },
);
my $res = $run->run;
my ($f, $p) = @{$res}{qw(figures problems)};
diag "\n" . $run->figures_table;

sub none {
    my ($kind, $name) = @_;
    my @l = @{ $p->{$kind} || [] };
    ok(!@l, $name) or diag(scalar(@l) . " problem(s):\n" . join("\n",
        map { "  $_" } @l[ 0 .. ($#l < 29 ? $#l : 29) ]));
}

# the faults happened
ok($_->{ok}, "chaos at " . sprintf('%.1f s: ', $_->{t} - $run->{t0}) . $_->{what})
    for @{ $res->{chaos} };
my %did = map { $_->{action} => 1 } grep { $_->{ok} } @{ $res->{chaos} };
ok($did{$_}, "chaos included $_")
    for qw(redis_kill consumer_kill nginx_reload nginx_worker_kill);
ok($f->{aof_loads} >= 1, "Redis reloaded its AOF after each kill ($f->{aof_loads})");
ok($f->{http_503} > 0, "the sender saw Redis outages as 503s ($f->{http_503}) and retried");
ok($f->{kit_faulted} > 0 && $f->{stripe_faulted} > 0,
   "Kit ($f->{kit_faulted}) and Stripe ($f->{stripe_faulted}) answered faults");
ok($f->{purchase_answer_lost} > 0, "Kit recorded purchases whose answer was lost "
   . "($f->{purchase_answer_lost}): each must still be there once");

# ingest
ok($res->{sender_ok}, 'the sender finished before its deadline');
none('undelivered', 'every validly signed event was answered 2xx in the end');
none('lost_acked', 'every event answered 200 is in Redis after the crashes');
none('bad_accepted', 'no forged request was accepted');
is($f->{forged_refused}, $f->{forged_requests},
   "every forged request answered was refused with 400 ($f->{forged_requests})");
none('bad_seen', 'forged events: not seen, not queued, not applied, no customer');
ok($f->{answered_duplicate} > 0,
   "duplicates were absorbed ($f->{answered_duplicate} answered duplicate)");

# the consumers
ok($res->{idle}, 'idle: queue, retry set and processing lists drained');
none('leftover', 'nothing left in Redis but dead letters; no dead consumer registered');
none('outcome', 'every queued job ended as its action says (done, skipped, stale)');
none('dead_unexpected', 'no dead letter but the injected permanent failures');
none('dead_missing', 'every job hit by an injected permanent failure is a dead letter');
is($f->{dead_letters}, $f->{dead_expected},
   "dead letters: exactly the injected failures ($f->{dead_expected})");
none('unexpected_purchase', 'no purchase at Kit that should not be there');
none('nginx_alerts', 'no nginx alert but the killed workers');
none('consumer_died', 'the consumers are still running');
none('recovered_live', 'no consumer took the jobs of a live one');
$run->kit->no_violations('Kit: every request fit the API spec');

# the figures that matter
is($f->{lost}, 0, 'lost: 0') or diag($run->problems_text);
is($f->{duplicated}, 0, 'duplicated: 0') or diag(join "\n", @{ $p->{duplicated} });
none('lost', 'lost: none');

finish(killed => [ $run->killed_workers ]);
