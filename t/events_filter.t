# Narrowing what is queued: stripe_sync_events (exact names and "prefix.*")
# and stripe_sync_livemode test. A filtered event is verified, answered 200
# "ignored" with the reason, counted, and never queued.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use StripeSync::Test;

require_module();

my $SECRET = 'whsec_filter_0123456789';

my $redis = start_redis();
my $ng = start_nginx(
    http => "stripe_sync_redis 127.0.0.1:$redis->{port};",
    conf => "
        location = /narrow {
            stripe_sync;
            stripe_sync_secret $SECRET;
            stripe_sync_events checkout.session.completed invoice.*;
        }
        location = /test-only {
            stripe_sync;
            stripe_sync_secret $SECRET;
            stripe_sync_livemode test;
        }
        location = /status { stripe_sync_status; }
    ");

sub send_event {
    my ($path, %ev) = @_;
    my $id = unique_id('evt');
    my $res = post_event($ng->url($path), make_event(id => $id, %ev),
                         secret => $SECRET);
    return ($res, $id);
}

sub queued { my $id = shift; scalar grep { $_->{id} eq $id } @{ $redis->queue } }

my $invoice = {
    id => 'in_filter_1', object => 'invoice', customer => 'cus_filter',
    customer_email => 'filter@example.org', amount_paid => 1200,
    currency => 'usd', attempt_count => 1,
    billing_reason => 'subscription_cycle', status => 'paid',
};

# exact name accepted
my ($res, $id) = send_event('/narrow', type => 'checkout.session.completed',
    object => { id => 'cs_filter_1', object => 'checkout.session',
                mode => 'payment', payment_status => 'paid',
                customer_details => { email => 'buyer@example.org' },
                amount_total => 500, currency => 'usd' });
is($res->{status}, 200, 'listed type: 200') or diag_response($res, $ng);
ok($res->{json}{received} && !exists $res->{json}{ignored},
   'listed type accepted');
is(queued($id), 1, 'listed type in the queue');

# "invoice.*" accepts any invoice event
($res, $id) = send_event('/narrow', type => 'invoice.paid', object => $invoice);
is($res->{status}, 200, 'prefix match: 200');
ok(!exists $res->{json}{ignored}, 'prefix match not ignored')
    or diag explain $res->{json};
is(queued($id), 1, 'prefix match queued');

# a handled type outside the list: ignored, with the reason
($res, $id) = send_event('/narrow', type => 'customer.subscription.deleted',
    object => { id => 'sub_filter_1', object => 'subscription',
                customer => 'cus_filter', status => 'canceled' });
is($res->{status}, 200, 'unlisted type: 200 (Stripe must not retry)');
like($res->{json}{ignored} // '', qr/stripe_sync_events/,
     'unlisted type: ignored, naming the directive');
is(queued($id), 0, 'unlisted type not queued');
ok(!$redis->cmd('EXISTS', "{stripe_sync}:seen:$id"),
   'unlisted type not marked seen: a wider filter later may take it');

# "invoice.*" does not match "invoiceX..." or a bare "invoice"
($res, $id) = send_event('/narrow', type => 'customer.created',
    object => { id => 'cus_filter_2', object => 'customer',
                email => 'c@example.org' });
like($res->{json}{ignored} // '', qr/stripe_sync_events/,
     'customer.created filtered');

# a bad signature is still refused before any filter
$res = post_event($ng->url('/narrow'),
    make_event(type => 'customer.created', object => {}),
    secret => 'whsec_wrong');
is($res->{status}, 400, 'filter does not bypass verification');

# livemode test: live events ignored, test ones queued
($res, $id) = send_event('/test-only', type => 'invoice.paid',
    livemode => 1, object => { %$invoice, id => 'in_filter_live' });
like($res->{json}{ignored} // '', qr/live/, 'live event on test-only: ignored');
is(queued($id), 0, 'live event not queued');

($res, $id) = send_event('/test-only', type => 'invoice.paid',
    livemode => 0, object => { %$invoice, id => 'in_filter_test' });
ok(!exists $res->{json}{ignored}, 'test event on test-only: accepted');
is(queued($id), 1, 'test event queued');

my $m = parse_prometheus(http_get($ng->url('/status'))->{content});
is($m->{'stripe_sync_requests_total{result="ignored"}'}, 3,
   'every filtered event counted as ignored');

# a '*' anywhere but at the end is a configuration error naming the value
my ($rc, $out) = nginx_t(
    http => "stripe_sync_redis 127.0.0.1:$redis->{port};",
    conf => "location = /x { stripe_sync; stripe_sync_secret $SECRET;
                             stripe_sync_events invoice.paid in*voice.x; }");
isnt($rc, 0, 'misplaced * refused by nginx -t');
like($out, qr/\[emerg\].*invalid event type "in\*voice\.x"/,
     'the error names the bad type');

finish();
