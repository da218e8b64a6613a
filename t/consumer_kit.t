# stripe-sync consume, end to end with Kit: signed webhooks into nginx ->
# Redis -> the consumer -> a fake Kit v4 account (and a fake Stripe API for
# enrichment). The tray.ai use cases of SPEC 8: product-specific
# onboarding from a Checkout Session's line items, dunning tag + sequence
# removed on recovery, cancellation tag / untag / win-back, tenure
# milestones; email resolution through the customer map and the Stripe API;
# stale subscription events skipped.

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
my $now = int time;

my $stripe = StripeSync::Fake->new(api => 'stripe', page_size_cap => 1, seed => {
    customers => [
        { id => 'cus_S', object => 'customer', email => 'sam@example.org',
          name => 'Sam Stripe', created => $now - 1000 },
    ],
    checkout_sessions => [ map { { id => $_, object => 'checkout.session' } }
                           qw(cs_COURSE cs_BOOK) ],
    line_items => {
        cs_COURSE => [
            $s->line_item(id => 'li_1', price => 'price_COURSE', product => 'prod_COURSE',
                          amount => 9900, description => 'The Course'),
            $s->line_item(id => 'li_2', price => 'price_BOOK', product => 'prod_BOOK',
                          amount => 1500, description => 'The Book'),
        ],
        cs_BOOK => [
            $s->line_item(id => 'li_3', price => 'price_BOOK', product => 'prod_BOOK',
                          amount => 1500, description => 'The Book'),
        ],
    },
    subscriptions => [
        { id => 'sub_OLD', object => 'subscription', customer => 'cus_T1',
          status => 'active', start_date => $now - 400 * 86400, created => $now - 400 * 86400 },
        { id => 'sub_NEW', object => 'subscription', customer => 'cus_T2',
          status => 'active', start_date => $now - 10 * 86400, created => $now - 10 * 86400 },
    ],
});

my $kit = StripeSync::Fake->new(api => 'kit', seed => {
    sequences => ['Course onboarding', 'Dunning', 'Win-back'],
    tags => ['active-member'],
});

my $c = $s->consumer(provider => $kit, stripe => $stripe, rules => [
    { on => 'purchase', product => 'prod_COURSE', tag => ['Course buyer'],
      sequence => 'Course onboarding', fields => { plan => '{items.0.price}' } },
    { on => 'payment_failed', tag => ['dunning'], sequence => 'Dunning' },
    { on => 'payment_recovered', untag => ['dunning'] },
    { on => 'subscription_started', tag => ['active-member'] },
    { on => 'subscription_cancelled', tag => ['churned'], untag => ['active-member'],
      sequence => 'Win-back' },
    { on => 'renewal', min_tenure_days => 365, tag => ['member-1y'] },
]);

# --- helpers ---

sub settle {
    my ($what) = @_;
    ok($s->idle(tmo(20)), "$what: the queue drained")
        or diag("consumer log:\n" . $c->output);
}

sub subscriber {
    my ($email) = @_;
    my $st = $kit->state;
    my ($u) = grep { lc $_->{email_address} eq lc $email } values %{ $st->{subscribers} };
    return ($u, $st);
}

# tag names, sequence names of a subscriber
sub tags_of {
    my ($email) = @_;
    my ($u, $st) = subscriber($email);
    return [] unless $u;
    return [ sort map { $_->{name} } grep { $st->{taggings}{ $_->{id} }{ $u->{id} } }
             @{ $st->{tags} } ];
}

sub sequences_of {
    my ($email) = @_;
    my ($u, $st) = subscriber($email);
    return [] unless $u;
    return [ sort map { $_->{name} } grep { $st->{sequence_subs}{ $_->{id} }{ $u->{id} } }
             @{ $st->{sequences} } ];
}

# the changing calls (not GETs) since $mark, ids as {id}
sub changes {
    my ($mark) = @_;
    return [ map { (my $r = "$_->{method} $_->{route}") =~ s/\d+/{id}/g; $r }
             grep { $_->{method} ne 'GET' } $kit->requests(since => $mark) ];
}

# every Kit request since $mark is about $email (bodies and queries)
sub only_about {
    my ($mark, $email) = @_;
    my @other = grep {
        my $r = $_;
        my $e = $r->{json} && ($r->{json}{email_address}
                               // ($r->{json}{purchase} || {})->{email_address});
        $e //= $r->{params}{email_address};
        defined $e && lc $e ne lc $email;
    } $kit->requests(since => $mark);
    ok(!@other, "only $email was touched") or diag explain \@other;
}

# --- scenarios ---

subtest 'product onboarding from the Checkout Session line items' => sub {
    my $km = $kit->mark;
    my $sm = $stripe->mark;
    my $id = $s->send('checkout.session.completed',
        $s->checkout_session(id => 'cs_COURSE', customer => 'cus_P',
                             email => 'pat@example.org', name => 'Pat Course', amount => 11400));
    settle('course purchase');

    my @li = $stripe->requests(since => $sm, route => qr{^/v1/checkout/sessions/cs_COURSE/line_items});
    is(scalar @li, 2, 'line items read from the Stripe API in two pages (page size 1)');
    is($li[0]{params}{starting_after}, undef, 'first page');
    is($li[1]{params}{starting_after}, 'li_1', 'second page after li_1');
    is($li[0]{headers}{authorization}, 'Bearer ' . $stripe->key, 'with the Stripe key');

    # the rule's fields ride on the upsert (the plan puts them there) or
    # come as a last POST /subscribers of their own
    my $ch = changes($km);
    pop @$ch if @$ch == 5 && $ch->[4] eq 'POST /subscribers';
    is_deeply($ch, [
        'POST /subscribers',                  # upsert
        'POST /tags',                         # "Course buyer" did not exist
        'POST /tags/{id}/subscribers',
        'POST /sequences/{id}/subscribers',
    ], 'upsert, create + apply the tag, sequence (in that order)');
    my @up = $kit->requests(since => $km, method => 'POST', route => '/subscribers');
    is($up[0]{json}{email_address}, 'pat@example.org', 'upsert: email');
    is($up[0]{json}{first_name}, 'Pat', 'upsert: first name');
    is_deeply([ map { $_->{json}{fields} // () } @up ], [ { plan => 'price_COURSE' } ],
              'fields sent once: plan = {items.0.price}');
    is_deeply(tags_of('pat@example.org'), ['Course buyer'], 'tagged "Course buyer"');
    is_deeply(sequences_of('pat@example.org'), ['Course onboarding'], 'in "Course onboarding"');
    my ($u) = subscriber('pat@example.org');
    is($u->{fields}{plan}, 'price_COURSE', 'field plan = {items.0.price}');
    is(scalar($kit->requests(since => $km, method => 'POST', route => '/tags')), 1,
       'the tag was created once');
    only_about($km, 'pat@example.org');

    # a purchase of another product matches no rule: nothing at all
    $km = $kit->mark;
    $s->send('checkout.session.completed',
        $s->checkout_session(id => 'cs_BOOK', customer => 'cus_B',
                             email => 'bob@example.org', amount => 1500));
    settle('book purchase');
    is(scalar($stripe->requests(route => qr{cs_BOOK/line_items})), 1,
       'its line items were read');
    is_deeply($kit->calls(since => $km), [], 'no rule for prod_BOOK: no Kit request');
};

subtest 'dunning: payment_failed tags + sequence, payment_recovered untags' => sub {
    my $km = $kit->mark;
    my $inv = $s->invoice(id => 'in_DUN', customer => 'cus_D', email => 'dan@example.org',
                          name => 'Dan Dunning', attempt_count => 1, status => 'open',
                          billing_reason => 'subscription_cycle', paid => 0);
    $s->send('invoice.payment_failed', $inv);
    settle('payment_failed');
    is_deeply(changes($km), [
        'POST /subscribers', 'POST /tags', 'POST /tags/{id}/subscribers',
        'POST /sequences/{id}/subscribers',
    ], 'upsert, tag "dunning" (created), sequence "Dunning"');
    is_deeply(tags_of('dan@example.org'), ['dunning'], 'tagged dunning');
    is_deeply(sequences_of('dan@example.org'), ['Dunning'], 'in the Dunning sequence');

    $km = $kit->mark;
    $s->send('invoice.paid', { %$inv, attempt_count => 2, status => 'paid',
                               amount_paid => $inv->{amount_due} });
    settle('payment_recovered');
    my @del = $kit->requests(since => $km, method => 'DELETE');
    is(scalar @del, 1, 'one DELETE');
    my ($u, $st) = subscriber('dan@example.org');
    my ($dunning) = grep { $_->{name} eq 'dunning' } @{ $st->{tags} };
    is($del[0]{route}, "/tags/$dunning->{id}/subscribers/$u->{id}",
       'DELETE /tags/{dunning}/subscribers/{subscriber id}');
    ok(scalar($kit->requests(since => $km, method => 'GET', route => '/subscribers')),
       'the subscriber id was looked up by email');
    is_deeply(tags_of('dan@example.org'), [], 'dunning removed');
    only_about($km, 'dan@example.org');
};

subtest 'cancellation: tag churned, untag active, win-back; email from the customer map' => sub {
    my $sm = $stripe->mark;
    # an earlier event carried the email: the module keeps cus_C -> email
    $s->send('invoice.paid', $s->invoice(customer => 'cus_C', email => 'cat@example.org',
        name => 'Cat Cancel', billing_reason => 'subscription_create', subscription => 'sub_C'));
    settle('first invoice');
    is($s->customers->{cus_C}{email}, 'cat@example.org', 'customer map has cus_C');

    my $km = $kit->mark;
    $s->send('customer.subscription.created',
             $s->subscription(id => 'sub_C', customer => 'cus_C'), created => $now - 60);
    settle('subscription_started');
    is_deeply(changes($km), ['POST /subscribers', 'POST /tags/{id}/subscribers'],
              'upsert + tag "active-member" (it exists: not created)');
    is_deeply(tags_of('cat@example.org'), ['active-member'], 'active member');

    $km = $kit->mark;
    $s->send('customer.subscription.deleted',
             $s->subscription(id => 'sub_C', customer => 'cus_C', status => 'canceled'),
             created => $now - 30);
    settle('subscription_cancelled');
    is_deeply(changes($km), [
        'POST /subscribers', 'POST /tags', 'POST /tags/{id}/subscribers',
        'DELETE /tags/{id}/subscribers/{id}', 'POST /sequences/{id}/subscribers',
    ], 'upsert, tag churned (created), untag active-member, sequence Win-back');
    is_deeply(tags_of('cat@example.org'), ['churned'], 'churned, no longer active-member');
    is_deeply(sequences_of('cat@example.org'), ['Win-back'], 'in Win-back');
    is(scalar($stripe->requests(since => $sm, route => qr{^/v1/customers})), 0,
       'no Stripe customer lookup: the map had the email');
    only_about($km, 'cat@example.org');
};

subtest 'no email in the event: the Stripe API, cached into the customer map' => sub {
    my $km = $kit->mark;
    my $sm = $stripe->mark;
    ok(!$s->customers->{cus_S}, 'cus_S not in the map yet');
    $s->send('customer.subscription.created',
             $s->subscription(id => 'sub_S', customer => 'cus_S'), created => $now - 50);
    settle('subscription_started for cus_S');
    my @get = $stripe->requests(since => $sm, route => '/v1/customers/cus_S');
    is(scalar @get, 1, 'GET /v1/customers/cus_S');
    my ($up) = $kit->requests(since => $km, method => 'POST', route => '/subscribers');
    is($up->{json}{email_address}, 'sam@example.org', 'upserted with the API\'s email');
    is($up->{json}{first_name}, 'Sam', 'and first name');
    is_deeply(tags_of('sam@example.org'), ['active-member'], 'tagged');
    is_deeply($s->customers->{cus_S}, { email => 'sam@example.org', name => 'Sam Stripe' },
              'cached into {P}:customers');

    $sm = $stripe->mark;
    $s->send('customer.subscription.deleted',
             $s->subscription(id => 'sub_S', customer => 'cus_S', status => 'canceled'),
             created => $now - 40);
    settle('subscription_cancelled for cus_S');
    is(scalar($stripe->requests(since => $sm, route => qr{^/v1/customers})), 0,
       'second event: from the map, no API call');
    is_deeply(tags_of('sam@example.org'), ['churned'], 'churned');
};

subtest 'no email anywhere: dead letter' => sub {
    my $km = $kit->mark;
    my $dead0 = scalar @{ $s->dead };
    my $id = $s->send('customer.subscription.created',
                      $s->subscription(id => 'sub_GHOST', customer => 'cus_GHOST'));
    settle('ghost');
    my @get = $stripe->requests(route => '/v1/customers/cus_GHOST');
    is(scalar @get, 1, 'Stripe asked once');
    is($get[0]{status}, 404, 'Stripe: no such customer');
    my @d = @{ $s->dead };
    is(scalar @d, $dead0 + 1, 'one dead letter');
    my ($l) = grep { ($_->{record}{id} // '') eq $id } @d;
    ok($l, 'for this event') or diag explain \@d;
    like($l->{error} // '', qr/email/i, "error says why: " . ($l->{error} // ''));
    is_deeply($kit->calls(since => $km), [], 'nothing sent to Kit');
};

subtest 'out of order: subscription_started after subscription_cancelled is stale' => sub {
    $s->send('invoice.paid', $s->invoice(customer => 'cus_O', email => 'olly@example.org',
        billing_reason => 'subscription_create', subscription => 'sub_O'));
    settle('first invoice');
    my $stale0 = $s->stats->{consumer_stale} // 0;
    my $km = $kit->mark;
    $s->send('customer.subscription.deleted',
             $s->subscription(id => 'sub_O', customer => 'cus_O', status => 'canceled'),
             created => $now - 10);
    settle('cancelled (newer) first');
    is_deeply(tags_of('olly@example.org'), ['churned'], 'churned');
    $km = $kit->mark;
    $s->send('customer.subscription.created',
             $s->subscription(id => 'sub_O', customer => 'cus_O'), created => $now - 100);
    settle('started (older) second');
    is_deeply([ grep { $_->{method} ne 'GET' } $kit->requests(since => $km) ], [],
              'the stale subscription_started changed nothing at Kit');
    is_deeply(tags_of('olly@example.org'), ['churned'], 'still churned, not active-member');
    is(($s->stats->{consumer_stale} // 0) - $stale0, 1, 'counted stale');
    like($c->output, qr/stale/, 'logged as stale');
};

subtest 'tenure milestone: the subscription start from the Stripe API' => sub {
    my $sm = $stripe->mark;
    for my $t ([qw(OLD tess)], [qw(NEW tom)]) {
        $s->send('invoice.paid', $s->invoice(customer => "cus_T$t->[0]",
            email => "$t->[1]\@example.org", billing_reason => 'subscription_cycle',
            subscription => "sub_$t->[0]"));
    }
    settle('renewals');
    ok(scalar($stripe->requests(since => $sm, route => '/v1/subscriptions/sub_OLD')),
       'GET /v1/subscriptions/sub_OLD');
    is_deeply(tags_of('tess@example.org'), ['member-1y'], '400 days: member-1y');
    is_deeply(tags_of('tom@example.org'), [], '10 days: no milestone');
};

$kit->no_violations;
is(scalar(grep { !$_->{auth} } $kit->requests), 0, 'every Kit request authenticated');
is(scalar(grep { !$_->{auth} } $stripe->requests), 0, 'every Stripe request authenticated');
is_deeply($s->dead, [ grep { ($_->{record}{customer}{id} // '') eq 'cus_GHOST' } @{ $s->dead } ],
          'no other dead letters');
ok($c->alive, 'consumer still running');
my $st = $c->stop(sig => 'TERM', timeout => tmo(10));
is($st, 0, 'SIGTERM: exit 0') or diag($c->output);
unlike($c->output, qr/\b(panic|assert|segfault|AddressSanitizer)\b/i, 'nothing alarming logged');

finish();
