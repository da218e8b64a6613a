# A dead letter keeps the steps its job had finished: replayed, the job
# resumes at the step that failed, and a purchase recorded before the
# failure is not recorded again (Kit does not dedupe purchases).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use StripeSync::Test;
use StripeSync::Fake;

require_module();
require_tool();

my $s = StripeSync::Fake::Stack->new;
my $kit = StripeSync::Fake->new(api => 'kit');

# the purchase (rule 1) comes before the tag (rule 2) in the plan
my $c = $s->consumer(provider => $kit, rules => [
    { on => 'purchase', purchase => JSON::PP::true() },
    { on => 'purchase', tag => ['Later'] },
]);

$kit->fault(method => 'POST', route => qr{^/tags/\d+/subscribers$},
            status => 422, body => '{"errors":["Refused by the test"]}',
            times => -1);

my $id = $s->send('invoice.paid', $s->invoice(id => 'in_STEPS', customer => 'cus_STEPS',
    email => 'steps@example.org', billing_reason => 'subscription_create'));

ok(wait_until(sub { @{ $s->dead } == 1 }, tmo(20)), 'dead-lettered on the tag')
    or diag $c->output;
is(scalar $kit->requests(method => 'POST', route => '/purchases'), 1,
   'the purchase was recorded before the failure');
my $job = $s->job($id);
ok(scalar(grep { /^step:/ } keys %$job), 'the step record outlives the dead letter')
    or diag explain $job;
my $ttl = $s->redis->cmd('TTL', $s->key("job:$id"));
cmp_ok($ttl, '>', 30 * 86400, 'kept long enough for a replay (TTL in days: '
       . int($ttl / 86400) . ')');

$kit->clear_faults;
my ($rc, $out) = run_tool('dlq', '-c', $c->{conf}, 'replay', $id);
is($rc, 0, 'dlq replay') or diag $out;

ok($s->idle(tmo(20)), 'the replayed job completed') or diag $c->output;
is(scalar @{ $s->dead }, 0, 'no dead letter left');
my @tagged = grep { $_->{status} =~ /^20[01]$/ }
             $kit->requests(method => 'POST', route => qr{^/tags/\d+/subscribers$});
is(scalar @tagged, 1, 'the failed step applied on replay');
is(scalar $kit->requests(method => 'POST', route => '/purchases'), 1,
   'the purchase was not recorded again');

is($c->stop(sig => 'TERM', timeout => tmo(10)), 0, 'consumer exit 0');

finish();
