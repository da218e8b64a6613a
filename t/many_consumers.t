# Many consumers on one queue: four `stripe-sync consume` (concurrency 3
# each) drain 240 events of 20 customers, sent interleaved through nginx
# and the module, into the webhook fake, which answers some 503s and some
# slowly, so jobs retry and the customers' jobs overlap across consumers.
# For each customer the receiver must get the events in the order sent,
# each once, and the work must be spread over the consumers. One consumer
# is killed with SIGKILL mid-run: the others take its jobs over once its
# heartbeat expires, and the order still holds.
#
# Then the edges of the customer's order (docs/consumer.md, "Many
# consumers"): an order entry whose job exists nowhere is skipped after two
# looks; one whose job was finished without leaving the order at once; a
# record that is not in its customer's order (queued before ordering
# existed) runs without waiting.

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

my $NCUS = 20;      # customers
my $NEV = 12;       # events per customer

my $s = StripeSync::Fake::Stack->new;
my $r = $s->redis;
my $wh = StripeSync::Fake->new(api => 'webhook', secret => 'whsec_many_0123456789');

my @consumers;
for my $i (1 .. 4) {
    push @consumers, $s->consumer(provider => $wh, name => "mc$i",
        consumer_id => "mc$i", concurrency => 3,
        provider_extra => { rate => 15, burst => 5 },
        retry => { max_attempts => 12, base_delay => 1, max_delay => 2 },
        rules => [ { on => 'renewal', tag => ['Renewed'] } ]);
}

sub logs { join '', map { $_->output } @consumers }

sub customer { sprintf 'cus_MC%02d', $_[0] }

# the events, known before they are sent: round k sends event k of each
# customer, so every customer's events are interleaved with the others'
my (%sent, @plan);
for my $k (0 .. $NEV - 1) {
    for my $c (0 .. $NCUS - 1) {
        my $id = unique_id('evt');
        push @{ $sent{ customer($c) } }, $id;
        push @plan, [ $c, $k, $id ];
    }
}
my %customer_of = map { $_->[2] => customer($_->[0]) } @plan;

# faults: 503 twice for an early event of six customers, slow answers for
# two events of six others, and a burst of 503s for whatever comes
for my $c (0 .. 5) {
    $wh->fault(method => 'POST', body_like => $sent{ customer($c) }[2],
               status => 503, times => 2);
}
for my $c (6 .. 11) {
    for my $k (1, 4) {
        $wh->fault(method => 'POST', body_like => $sent{ customer($c) }[$k],
                   hang => 0.4);
    }
}
$wh->fault(method => 'POST', status => 503, times => 12, skip => 40);

for my $p (@plan) {
    my ($c, $k, $id) = @$p;
    $s->send('invoice.paid', $s->invoice(id => "in_MC${c}_$k", customer => customer($c),
        email => "mc$c\@example.org", billing_reason => 'subscription_cycle',
        subscription => "sub_MC$c"), id => $id);
}
pass(scalar(@plan) . ' events sent');

# what the receiver accepted, in arrival order
sub delivered {
    return grep { $_->{status} == 200 } $wh->requests(method => 'POST');
}

# SIGKILL one consumer while it holds jobs, a third of the way through
my $victim = $consumers[1];
my $vkey = $s->key('processing:mc2');
my @held;
ok(wait_until(sub {
    return 0 if scalar(delivered()) < @plan / 3;
    my $l = $r->cmd('LRANGE', $vkey, 0, -1) || [];
    return 0 unless @$l;
    $victim->kill;
    # what it held when it died: taken over by the others
    @held = map { json_decode($_)->{id} } @{ $r->cmd('LRANGE', $vkey, 0, -1) || [] };
    return 1;
}, tmo(30), 0.02), 'mc2 killed (SIGKILL) while holding jobs')
    or diag logs();
ok(!$victim->alive, 'mc2 is gone');
diag('mc2 held ' . scalar(@held) . " job(s) when killed: @held");

ok($s->idle(tmo(45)), 'the queue drained') or diag logs();

my @d = delivered();
my %count;
$count{ $_->{headers}{'x-stripe-sync-event'} // '' }++ for @d;
is(scalar(grep { !$count{$_->[2]} } @plan), 0, 'every event delivered')
    or diag(join ' ', grep { !$count{$_} } map { $_->[2] } @plan);
is_deeply($s->dead, [], 'no dead letter');

# each customer's deliveries, repeats of one event in a row collapsed: the
# send order; a repeat only for a job the killed consumer held (its request
# went out, its end did not)
my %held = map { $_ => 1 } @held;
my %got;
for my $q (@d) {
    my $id = $q->{headers}{'x-stripe-sync-event'};
    my $list = $got{ $customer_of{$id} // 'unknown' } ||= [];
    push @$list, $id unless @$list && $list->[-1] eq $id;
}
my $in_order = 0;
for my $c (0 .. $NCUS - 1) {
    my $cu = customer($c);
    $in_order++ if is_deeply($got{$cu} || [], $sent{$cu}, "$cu: applied in the order sent");
}
is($in_order, $NCUS, 'every customer in order');
my @twice = grep { $count{$_} > 1 } keys %count;
is(scalar(grep { !$held{$_} } @twice), 0,
   'applied once each (a repeat only for a job mc2 held when killed)')
    or diag("delivered more than once: @twice");
is(scalar(keys %count), scalar(@plan), 'nothing else delivered');

# the work was spread, and taken over
my %done;
for my $c (@consumers) {
    my $n = () = $c->output =~ /outcome=done/g;
    $done{ $c->{config}{consumer_id} } = $n;
}
diag(join ', ', map { "$_: $done{$_} done" } sort keys %done);
is(scalar(grep { $done{$_} > 0 } qw(mc1 mc3 mc4)), 3, 'each surviving consumer did jobs')
    or diag(join "\n", map { "--- $_->{config}{consumer_id}:\n" . $_->output } @consumers[0, 2, 3]);
ok(scalar(grep { $done{$_} >= @plan / 20 } keys %done) >= 3,
   'at least three consumers did 5% of the jobs or more');
like(logs(), qr/recovered \d+ job\(s\) of consumer "mc2" \(no heartbeat\)/,
     "mc2's jobs taken over after its heartbeat expired");
my $st = $s->stats;
ok(($st->{consumer_parked} // 0) > 0, "jobs waited for another consumer's earlier job of their customer "
   . "(parked: " . ($st->{consumer_parked} // 0) . ')');
ok(($st->{consumer_retried} // 0) > 0, 'jobs retried (' . ($st->{consumer_retried} // 0) . ')');
like(logs(), qr/event=\S+ customer=cus_MC\d+: waits for evt_\S+, before it in the customer's order: parked/,
     'a parked job is logged');
is_deeply($r->cmd('KEYS', $s->key('order:*')), [], 'no order list left');
is_deeply($r->cmd('KEYS', $s->key('parked*')), [], 'nothing parked');

# ---- the edges ----

my $m = $wh->mark;
my $P = $s->prefix;

# a head whose job exists nowhere (its queue entry deleted by hand)
$r->cmd('RPUSH', $s->key('order:cus_LOST'), 'evt_ghost');
# a head finished by a consumer that did not keep the order
$r->cmd('RPUSH', $s->key('order:cus_OLD'), 'evt_old');
$r->cmd('HSET', $s->key('job:evt_old'), 'done', '1');

my $inv = sub {
    my ($cu, $n) = @_;
    return $s->invoice(id => "in_${cu}_$n", customer => $cu, email => lc("$cu\@example.org"),
                       billing_reason => 'subscription_cycle');
};
my @lost = map { $s->send('invoice.paid', $inv->('cus_LOST', $_)) } 1 .. 2;
my $old = $s->send('invoice.paid', $inv->('cus_OLD', 1));
is_deeply($r->cmd('LRANGE', $s->key('order:cus_LOST'), 0, -1), [ 'evt_ghost', @lost ],
          "the module pushes each event on its customer's order list");
ok(($r->cmd('TTL', $s->key('order:cus_LOST')) // 0) > 6 * 86400, 'which lives 7 days');

# a record queued before ordering existed: not in the order list
my $legacy = unique_id('evt');
$r->cmd('LPUSH', $s->key('queue'), json_encode({ v => 1, id => $legacy, type => 'invoice.paid',
    action => 'renewal', created => int(time), livemode => JSON::PP::true,
    object => { type => 'invoice', id => 'in_legacy' },
    customer => { id => 'cus_LOST', email => 'cus_lost@example.org' },
    amount => 2900, currency => 'usd', invoice => 'in_legacy' }));

my $event_of = sub { map { $_->{headers}{'x-stripe-sync-event'} }
                     grep { $_->{status} == 200 } $wh->requests(method => 'POST', since => $m) };
ok(wait_until(sub { grep { $_ eq $legacy } $event_of->() }, tmo(10)),
   'a record not in its customer\'s order runs without waiting') or diag logs();
ok(!(grep { $_ eq $lost[0] || $_ eq $lost[1] } $event_of->()), 'while the others wait');
ok(wait_until(sub { ($r->cmd('HLEN', $s->key('parked:cus_LOST')) // 0) == 2 }, tmo(5)),
   'parked behind the lost head');

ok(wait_until(sub { scalar(grep { $_ eq $lost[1] } $event_of->()) }, tmo(30)),
   'the lost head is skipped') or diag logs();
my @after = $event_of->();
is_deeply([ grep { $_ eq $lost[0] || $_ eq $lost[1] } @after ], \@lost, 'the rest in order');
like(logs(), qr/order: customer "cus_LOST": event evt_ghost is in no queue, retry set or processing list \(two looks in a row\): skipped/,
     'the skip is logged');
ok(scalar(grep { $_ eq $old } @after), 'a head finished without leaving the order is skipped');
like(logs(), qr/order: customer "cus_OLD": event evt_old was finished but stayed in its customer's order/,
     'logged too');
ok($s->idle(tmo(15)), 'drained');
is(($s->stats->{consumer_order_skipped} // 0), 2, 'two skips counted');
is_deeply($r->cmd('KEYS', $s->key('order:*')), [], 'no order list left');

for my $c (@consumers[0, 2, 3]) {
    is($c->stop(sig => 'TERM', timeout => tmo(10)), 0, "$c->{config}{consumer_id} stopped");
}

finish();
