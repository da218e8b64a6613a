# stripe-sync consume with the generic webhook provider: one signed POST
# per job (X-Stripe-Sync-Signature: t=..,v1=HMAC-SHA256("<t>.<body>",
# secret)) carrying the event, the record and the plan; 5xx retried, 4xx
# dead-lettered. And the log provider (a dry run): nothing sent anywhere.

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
my $wh = StripeSync::Fake->new(api => 'webhook', secret => 'whsec_receiver_0123456789');
my $c = $s->consumer(provider => $wh, rules => [
    { on => 'purchase', tag => ['Buyer'], fields => { plan => '{items.0.price}' } },
    { on => 'payment_failed', tag => ['dunning'], sequence => 'Dunning' },
]);

sub settle {
    my ($what) = @_;
    ok($s->idle(tmo(20)), "$what: the queue drained") or diag("consumer log:\n" . $c->output);
}

my $id = $s->send('invoice.paid', $s->invoice(id => 'in_WH1', customer => 'cus_WH',
    email => 'wendy@example.org', name => 'Wendy Hook', billing_reason => 'subscription_create'));
settle('purchase');
my @r = $wh->requests;
is(scalar @r, 1, 'one POST for the job');
is($r[0]{method}, 'POST', 'POST');
is($r[0]{route}, '/deliver', 'to provider.url');
is($r[0]{sig_valid}, 1, 'signature valid') or diag $r[0]{sig_error};
is($r[0]{headers}{'x-stripe-sync-event'}, $id, 'X-Stripe-Sync-Event');
like($r[0]{headers}{'content-type'}, qr{^application/json}, 'JSON');
my $b = $r[0]{json};
is($b->{event}{id}, $id, 'event.id');
is($b->{event}{action}, 'purchase', 'event.action');
is($b->{event}{customer}{email}, 'wendy@example.org', 'event.customer.email');
is($b->{record}{id}, $id, 'the record as queued');
is($b->{record}{invoice}, 'in_WH1', 'record.invoice');
is_deeply([ map { $_->{op} } @{ $b->{plan} } ], ['upsert', 'tag'], 'the plan: upsert, tag');
is($b->{plan}[1]{name}, 'Buyer', 'tag name');

# 500 twice, then accepted: retried; a 400 from the receiver: dead letter
$wh->fault(method => 'POST', status => 500, times => 2, after => 1);   # verified, then 500
$s->send('invoice.payment_failed', $s->invoice(id => 'in_WH2', customer => 'cus_WH',
    email => 'wendy@example.org', status => 'open', paid => 0));
settle('payment_failed with two 500s');
my @p = grep { ($_->{json}{record}{invoice} // '') eq 'in_WH2' } $wh->requests;
is_deeply([ map { $_->{status} } @p ], [500, 500, 200], 'retried until accepted');
is(scalar(grep { $_->{sig_valid} } @p), 3, 'each try signed (valid)');
my %t = map { ($_->{headers}{'x-stripe-sync-signature'} =~ /t=(\d+)/)[0] => 1 } @p;
ok(scalar(keys %t) >= 2, 'signed anew (timestamps differ)');

$wh->fault(method => 'POST', status => 410, body => { error => 'gone' });
my $gone = $s->send('invoice.paid', $s->invoice(id => 'in_WH3', customer => 'cus_WH3',
    email => 'gone@example.org', billing_reason => 'subscription_create'));
settle('410');
my ($l) = grep { ($_->{record}{id} // '') eq $gone } @{ $s->dead };
ok($l, 'a 4xx from the receiver: dead letter');
like($l->{error} // '', qr/410/, 'error names the status');
unlike(json_encode($s->dead), qr/whsec_receiver/, 'the secret never appears');

# SIGHUP: the config file is read again
my %new = %{ $c->{config} };
$new{rules} = [ { on => 'purchase', tag => ['Reloaded'] } ];
spew($c->{conf}, libconfig(\%new));
my $mark = length $c->output;
kill 'HUP', $c->pid;
ok(wait_until(sub { substr($c->output, $mark) =~ /reload/i }, tmo(5)), 'reload logged')
    or diag substr($c->output, $mark);
my $m0 = $wh->mark;
$s->send('invoice.paid', $s->invoice(id => 'in_WH4', customer => 'cus_WH4',
    email => 'hup@example.org', billing_reason => 'subscription_create'));
settle('after SIGHUP');
my ($after) = $wh->requests(since => $m0);
is_deeply([ map { $_->{name} // $_->{op} } @{ $after->{json}{plan} || [] } ], ['upsert', 'Reloaded'],
          'the new rules apply');
is($c->stop(sig => 'TERM', timeout => tmo(10)), 0, 'stopped');

# the log provider: a dry run
my $dry = $s->consumer(provider => { type => 'log' }, rules => [
    { on => 'purchase', tag => ['Buyer'] } ], name => 'dry');
my $m = $wh->mark;
my $dry_id = $s->send('invoice.paid', $s->invoice(id => 'in_DRY', customer => 'cus_DRY',
    email => 'dry@example.org', billing_reason => 'subscription_create'));
ok($s->idle(tmo(20)), 'dry run: drained') or diag $dry->output;
like($dry->output, qr/\Q$dry_id\E/, 'the job is logged');
like($dry->output, qr/Buyer/, 'with its operations');
is(scalar($wh->requests(since => $m)), 0, 'nothing sent');
is($dry->stop(sig => 'TERM', timeout => tmo(10)), 0, 'stopped');

finish();
