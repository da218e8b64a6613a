# stripe-sync consume when the platform misbehaves (SPEC 6): transient
# errors retried with backoff and applied once; permanent 4xx dead-lettered
# at once with the response kept; retries exhausted -> dead letter; junk
# answers (not JSON, truncated, huge, too slow) retried; a consumer killed
# with SIGKILL in the middle of a job -> another finishes it, and the
# non-idempotent purchase reaches Kit once; a purchase Kit recorded but
# whose answer was lost (503 after applying, a timeout) is found at Kit by
# the retry and not sent again.

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
my $kit = StripeSync::Fake->new(api => 'kit');
my @rules = (
    { on => 'purchase', tag => ['Buyer', 'b-{invoice}'], purchase => JSON::PP::true },
);
# (rate: Kit's default 2/s is not what this file tests)
my %conf = (provider => $kit, rules => \@rules,
            provider_extra => { timeout => 2, rate => 50, burst => 50 });
my $c = $s->consumer(%conf);

sub settle {
    my ($what, $t) = @_;
    ok($s->idle(tmo($t // 20)), "$what: the queue drained")
        or diag("consumer log:\n" . $c->output);
}

sub purchase_event {
    my ($n) = @_;
    return $s->send('invoice.paid', $s->invoice(id => "in_$n", customer => "cus_$n",
        email => lc("$n\@example.org"), name => "$n Buyer",
        billing_reason => 'subscription_create', subscription => "sub_$n"));
}

sub purchases_of {
    my ($tid) = @_;
    return scalar grep { $_->{transaction_id} eq $tid } @{ $kit->state->{purchases} };
}

subtest '500 three times, then 200: retried with backoff, applied once' => sub {
    $kit->fault(method => 'POST', route => '/purchases', status => 500, times => 3);
    my $r0 = $s->stats->{consumer_retried} // 0;
    my $id = purchase_event('R500');
    settle('500 x3', 30);
    my @p = $kit->requests(method => 'POST', route => '/purchases');
    @p = grep { ($_->{json}{purchase}{transaction_id} // '') eq 'in_R500' } @p;
    is_deeply([ map { $_->{status} } @p ], [500, 500, 500, 201], 'four tries: 500 500 500 201');
    my @look = grep { $_->{t} > $p[0]{t} }
               $kit->requests(method => 'GET', route => '/purchases');
    is(scalar @look, 3, 'each retry first looked for it at Kit (GET /purchases): not there');
    is(purchases_of('in_R500'), 1, 'one purchase record at Kit');
    my @gap = map { ($p[$_]{t} - $p[$_ - 1]{done_t}) / 1000 } 1 .. $#p;
    my @min = (0.5, 1, 1);    # base 1 s doubling to max 2 s, jitter over the upper half
    for my $i (0 .. $#gap) {
        ok($gap[$i] >= $min[$i] - 0.05, sprintf('retry %d came %.2f s later (>= %.1f)',
                                                $i + 1, $gap[$i], $min[$i]));
    }
    my @tagging = grep { $_->{json}{email_address} eq 'r500@example.org' }
                  $kit->requests(method => 'POST', route => qr{^/tags/\d+/subscribers$});
    is(scalar @tagging, 2, 'the tags were applied once each (steps done are not repeated)');
    is(scalar(grep { ($_->{json}{email_address} // '') eq 'r500@example.org' }
              $kit->requests(method => 'POST', route => '/subscribers')), 1, 'one upsert');
    is(($s->stats->{consumer_retried} // 0) - $r0, 3, 'three retries counted');
    is_deeply($s->job($id), { done => 1 },
              'once done, the job record is only a done marker');
};

subtest '422: dead letter at once, with the response' => sub {
    $kit->fault(method => 'POST', route => '/purchases', status => 422,
                body => { errors => ['Transaction cannot be blank'] });
    my $t0 = time;
    my $id = purchase_event('R422');
    settle('422');
    my @p = grep { ($_->{json}{purchase}{transaction_id} // '') eq 'in_R422' }
            $kit->requests(route => '/purchases');
    is(scalar @p, 1, 'one try only');
    is(purchases_of('in_R422'), 0, 'no purchase at Kit');
    my ($l) = grep { ($_->{record}{id} // '') eq $id } @{ $s->dead };
    ok($l, 'a dead letter') or return diag explain $s->dead;
    like($l->{error}, qr/422/, "error: $l->{error}");
    like($l->{error}, qr/Transaction cannot be blank/, 'error has Kit\'s message');
    like(ref $l->{response} ? json_encode($l->{response}) : $l->{response} // '',
         qr/Transaction cannot be blank/, 'response kept');
    is($l->{attempts}, 1, 'attempts 1');
    ok($l->{failed_at} >= int($t0) - 1 && $l->{failed_at} <= time + 1, 'failed_at');
    like($l->{consumer} // '', qr/\S/, "consumer: $l->{consumer}");
    is($l->{record}{action}, 'purchase', 'the record as queued');
    unlike(json_encode($l), qr/\Q@{[ $kit->key ]}\E|\Q@{[ $kit->oauth ]}\E/,
           'no credential in the letter');
};

subtest 'retries exhausted: dead letter with the last error' => sub {
    $kit->fault(method => 'POST', route => '/purchases', status => 503, times => -1,
                body => { errors => ['Service down for maintenance'] });
    my $id = purchase_event('R503');
    settle('503 forever', 30);
    $kit->clear_faults;
    my @p = grep { ($_->{json}{purchase}{transaction_id} // '') eq 'in_R503' }
            $kit->requests(route => '/purchases');
    is(scalar @p, 5, 'retry.max_attempts = 5 tries');
    my ($l) = grep { ($_->{record}{id} // '') eq $id } @{ $s->dead };
    ok($l, 'then a dead letter') or return;
    like($l->{error}, qr/503/, "error: $l->{error}");
    is($l->{attempts}, 5, 'attempts 5');
};

subtest 'junk answers are retried: not JSON, truncated, huge, too slow' => sub {
    my @kinds = ([kind => 'nonjson'], [kind => 'truncated'], [kind => 'huge'],
                 [hang => 8], [kind => 'close']);
    $kit->fault(method => 'GET', route => '/tags', @$_) for @kinds;
    my @ids = map { purchase_event("J$_") } 1 .. 5;
    settle('junk', 40);
    my @used = grep { $_->{fault} } $kit->requests(all => 1, method => 'GET', route => '/tags');
    is(scalar @used, 5, 'each junk answer was served once') or diag explain [ map { $_->{fault} } @used ];
    for my $n (1 .. 5) {
        is(purchases_of("in_J$n"), 1, "J$n: purchase recorded once");
    }
    is_deeply([ grep { ($_->{record}{id} // '') =~ /^(?:\Q@{[ join '|', @ids ]}\E)$/ }
                @{ $s->dead } ], [], 'no dead letter for them');
    ok($c->alive, 'the consumer survived');
};

subtest 'applied, then the answer lost: found at Kit, not recorded twice' => sub {
    my $mark = $kit->mark;
    # Kit records LOST1 and answers 503; it records LOST2 and answers after
    # the consumer's 2 s timeout
    $kit->fault(method => 'POST', route => '/purchases', body_like => 'in_LOST1',
                status => 503, after => 1);
    $kit->fault(method => 'POST', route => '/purchases', body_like => 'in_LOST2',
                hang => 4, apply => 'after');
    my @ids = map { purchase_event("LOST$_") } 1, 2;
    settle('lost answers', 40);
    ok(wait_until(sub { !@{ $kit->held } }, tmo(10)), 'Kit answered the held request');
    for my $n (1, 2) {
        is(purchases_of("in_LOST$n"), 1, "LOST$n: one purchase record at Kit");
        my @post = grep { ($_->{json}{purchase}{transaction_id} // '') eq "in_LOST$n" }
                   $kit->requests(all => 1, since => $mark, method => 'POST',
                                  route => '/purchases');
        is(scalar @post, 1, "LOST$n: posted once, the retry did not post again");
        is_deeply($s->job($ids[$n - 1]), { done => 1 }, "LOST$n: the job is done");
    }
    my @get = $kit->requests(all => 1, since => $mark, method => 'GET', route => '/purchases');
    ok(@get >= 2, 'the retries looked at GET /purchases (' . scalar(@get) . ')');
    like($c->output, qr/event=\Q$ids[0]\E operation purchase sent by an earlier attempt: "?already recorded by an earlier attempt \(Kit purchase \d+\): not sent again/,
         'the log says the purchase was found, not sent again');
    ok(!grep({ my $l = $_; grep { ($l->{record}{id} // '') eq $_ } @ids } @{ $s->dead }),
       'no dead letter');
    $kit->clear_faults;
};

subtest 'SIGKILL mid-job: another consumer finishes it, the purchase reaches Kit once' => sub {
    $kit->fault(method => 'POST', route => '/purchases', hang => 60);
    my $mark = $kit->mark;
    my $id = purchase_event('KILL');
    ok(wait_until(sub { @{ $kit->held } == 1 }, tmo(15)), 'the purchase is in flight (held)')
        or diag $c->output;
    my $hb = $s->redis->cmd('KEYS', $s->key('consumer:*'));
    $c->kill;
    ok(!$c->alive, 'consumer killed with SIGKILL');
    ok(wait_until(sub { !@{ $kit->held } }, tmo(5)), 'Kit saw the connection go');
    $kit->clear_faults;
    my @proc = @{ $s->redis->cmd('KEYS', $s->key('processing:*')) || [] };
    ok(scalar(grep { $s->redis->cmd('LLEN', $_) } @proc), 'the job is left in a processing list');

    my $log = $c->{log};
    $c = $s->consumer(%conf, log => $log);
    settle('recovery', 30);
    is(purchases_of('in_KILL'), 1, 'one purchase record at Kit');
    my @p = $kit->requests(all => 1, since => $mark, method => 'POST', route => '/purchases');
    is_deeply([ map { $_->{dropped} ? 'dropped' : $_->{status} } @p ], ['dropped', 201],
              'the held request was dropped unapplied, the retry applied');
    my @get = $kit->requests(all => 1, since => $mark, method => 'GET', route => '/purchases');
    ok(@get >= 1 && $get[0]{t} < $p[1]{t},
       'the new consumer looked for the purchase at Kit before posting it again');
    my @tag = grep { $_->{json}{email_address} eq 'kill@example.org' }
              $kit->requests(since => $mark, method => 'POST', route => qr{^/tags/\d+/subscribers$});
    is(scalar @tag, 2, 'the finished steps (tags) were not repeated');
    ok(!grep({ ($_->{record}{id} // '') eq $id } @{ $s->dead }), 'no dead letter');
    like($c->output, qr/recover/i, 'the recovery is logged');
};

subtest 'a cached tag id Kit no longer knows (404): looked up again' => sub {
    # Buyer's id is cached by now; Kit answers 404 once as if it were deleted
    $kit->fault(method => 'POST', route => qr{^/tags/\d+/subscribers$},
                body_like => qr/stale404/, status => 404, body => { errors => ['Not Found'] });
    my $mark = $kit->mark;
    purchase_event('STALE404');
    settle('404 on a cached id');
    is(purchases_of('in_STALE404'), 1, 'the job finished');
    ok(scalar($kit->requests(since => $mark, method => 'GET', route => '/tags')),
       'the tags were listed again');
    my @t = grep { ($_->{json}{email_address} // '') eq 'stale404@example.org' }
            $kit->requests(since => $mark, method => 'POST', route => qr{^/tags/\d+/subscribers$});
    is_deeply([ map { $_->{status} } @t ], [404, 201, 201], 'the 404, then both tags applied');
};

subtest 'two consumers share the queue: each job done once' => sub {
    my $c2 = $s->consumer(%conf, name => 'consumer-2');
    my $mark = $kit->mark;
    my @n = map { "TWO$_" } 1 .. 16;
    purchase_event($_) for @n;
    settle('sixteen jobs, two consumers', 30);
    is_deeply([ map { purchases_of("in_$_") } @n ], [ (1) x 16 ], 'one purchase each');
    my @up = grep { ($_->{json}{email_address} // '') =~ /^two\d+\@/ }
             $kit->requests(since => $mark, method => 'POST', route => '/subscribers');
    is(scalar @up, 16, 'one upsert each');
    like($c2->output, qr/outcome=done/, 'the second consumer did some');
    like($c->output, qr/TWO/i, 'and so did the first') ;
    is($c2->stop(sig => 'TERM', timeout => tmo(10)), 0, 'second consumer stopped');
};

subtest 'Redis restarted under the consumer: it reconnects and goes on' => sub {
    my $before = length $c->output;
    $s->redis->restart(kill => 1);    # data gone too
    ok(wait_until(sub { substr($c->output, $before) =~ /redis: (re)?connected/ }, tmo(10)),
       'reconnection logged') or diag substr($c->output, $before);
    # nginx reconnects on its own backoff: send once it queues again
    ok(wait_until(sub { eval { purchase_event('AFTERREDIS'); 1 } }, tmo(10), 0.2),
       'nginx queues again');
    settle('after the restart');
    is(purchases_of('in_AFTERREDIS'), 1, 'a new job is done');
    ok($c->alive, 'consumer alive');
};

$kit->no_violations;
is($c->stop(sig => 'TERM', timeout => tmo(10)), 0, 'SIGTERM: exit 0') or diag $c->output;

finish();
