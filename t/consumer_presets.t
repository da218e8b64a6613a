# The presets (SPEC 6, 8), end to end: signed webhooks into nginx -> Redis
# -> stripe-sync consume with only `preset = ...` -> a fake platform. Each
# reproduces its hosted integration's defaults:
#   convertkit      purchasers become subscribers with purchase records;
#                   other events do nothing
#   activecampaign  contacts on charge/customer/invoice/checkout/subscription
#                   events, tagged stripe-integration and
#                   stripe-integration-<event>; Deep Data orders for purchases
#   klaviyo         metrics Successfully Paid / Failed Payment / Refunded
#                   Payment; live data only
#   customerhub     the "customer" tag is access: granted on purchase,
#                   removed when the subscription ends

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(time sleep);
use StripeSync::Test;
use StripeSync::Fake;

require_module();
require_tool();

my $s = StripeSync::Fake::Stack->new;
my $now = int time;
my $c;    # the running consumer

sub settle {
    my ($what) = @_;
    ok($s->idle(tmo(20)), "$what: the queue drained")
        or diag("consumer log:\n" . $c->output);
}

my $dead0 = 0;    # dead letters before the preset's consumer started

sub run_preset {
    my (%o) = @_;
    $c->stop(sig => 'TERM', timeout => tmo(10)) if $c;
    $dead0 = scalar @{ $s->dead };
    $c = $s->consumer(%o, name => "consumer-" . ($o{preset} // "rules"));
}

sub done_preset {
    my ($what) = @_;
    my @d = @{ $s->dead };
    my @new = @d[ 0 .. $#d - $dead0 ];    # LPUSHed: newest first
    is_deeply(\@new, [], "$what: no dead letters") or diag explain \@new;
    is($c->stop(sig => 'TERM', timeout => tmo(10)), 0, "$what: SIGTERM, exit 0")
        or diag $c->output;
    undef $c;
}

sub calls_since {
    my ($f, $mark) = @_;
    return [ map { (my $r = "$_->{method} $_->{route}") =~ s/\d+/{id}/g; $r }
             $f->requests(since => $mark) ];
}

sub charge {
    my (%o) = @_;
    return { id => $o{id}, object => 'charge', amount => $o{amount} // 5000,
        amount_refunded => $o{refunded} // 0, refunded => $o{refunded} ? JSON::PP::true : JSON::PP::false,
        currency => 'usd', customer => $o{customer}, paid => JSON::PP::true,
        status => 'succeeded', created => $now,
        billing_details => { email => $o{email}, name => $o{name} // 'Charlie Charge' },
        metadata => {} };
}

# -------------------------------------------------------- convertkit ---

subtest 'convertkit (Kit)' => sub {
    my $kit = StripeSync::Fake->new(api => 'kit');
    my $stripe = StripeSync::Fake->new(api => 'stripe', seed => {
        checkout_sessions => [ { id => 'cs_CK', object => 'checkout.session' } ],
        line_items => { cs_CK => [ $s->line_item(id => 'li_ck1', price => 'price_EBOOK',
            product => 'prod_EBOOK', amount => 1900, description => 'E-book') ] } });
    run_preset(preset => 'convertkit', provider => $kit, stripe => $stripe);

    my $created = $now - 3600;
    my $inv = $s->invoice(id => 'in_CK1', customer => 'cus_K1', email => 'kim@example.org',
        name => 'Kim Kit', billing_reason => 'subscription_create', amount => 24900,
        items => [ { price => 'price_YEAR', product => 'prod_YEAR', amount => 24900,
                     description => '1 x Membership (at $249.00 / year)' } ]);
    my $mark = $kit->mark;
    my $id = $s->send('invoice.paid', $inv, created => $created);
    settle('first invoice');
    is_deeply(calls_since($kit, $mark), ['POST /subscribers', 'POST /purchases'],
              'a purchase: upsert, then the purchase record');
    my ($up, $p) = $kit->requests(since => $mark);
    is_deeply($up->{json}, { email_address => 'kim@example.org', first_name => 'Kim' },
              'upsert body');
    is($p->{headers}{authorization}, 'Bearer ' . $kit->oauth, 'purchase with the OAuth token');
    is_deeply($p->{json}, { purchase => {
        email_address => 'kim@example.org', first_name => 'Kim',
        transaction_id => 'in_CK1', status => 'paid', currency => 'USD',
        subtotal => 249, total => 249,
        transaction_time => strftime('%Y-%m-%dT%H:%M:%SZ', gmtime $created),
        products => [ { name => '1 x Membership (at $249.00 / year)', pid => 'prod_YEAR',
                        lid => 'price_YEAR', quantity => 1, unit_price => 249 } ],
    } }, 'purchase body: major units, upper-case currency, the invoice lines');
    like($p->{body}, qr/"total":249(\.0+)?[,}]/, 'total a JSON number');

    $mark = $kit->mark;
    $s->send('invoice.payment_failed', $s->invoice(customer => 'cus_K1', email => 'kim@example.org',
        status => 'open', attempt_count => 1, paid => 0));
    $s->send('customer.subscription.created', $s->subscription(id => 'sub_K1', customer => 'cus_K1'));
    settle('other events');
    is_deeply(calls_since($kit, $mark), [], 'payment_failed, subscription_started: nothing (discarded)');

    $mark = $kit->mark;
    $s->send('invoice.paid', $s->invoice(id => 'in_CK2', customer => 'cus_K1',
        email => 'kim@example.org', billing_reason => 'subscription_cycle', amount => 24900));
    $s->send('checkout.session.completed', $s->checkout_session(id => 'cs_CK',
        customer => 'cus_K2', email => 'ken@example.org', name => 'Ken', amount => 1900));
    settle('renewal and checkout');
    my @pur = map { $_->{json}{purchase} } $kit->requests(since => $mark, route => '/purchases');
    is_deeply([ sort map { $_->{transaction_id} } @pur ], ['cs_CK', 'in_CK2'],
              'a renewal and a Checkout purchase are purchases too');
    my ($cs) = grep { $_->{transaction_id} eq 'cs_CK' } @pur;
    is_deeply($cs->{products}, [ { name => 'E-book', pid => 'prod_EBOOK', lid => 'price_EBOOK',
                                   quantity => 1, unit_price => 19 } ],
              'Checkout purchase products from the Stripe line items');
    is($cs->{email_address}, 'ken@example.org', 'the session\'s customer_details email');
    is(scalar @{ $kit->state->{purchases} }, 3, 'three purchase records at Kit');
    $kit->no_violations;
    done_preset('convertkit');
};

# ---------------------------------------------------- activecampaign ---

subtest 'activecampaign (ActiveCampaign)' => sub {
    # names that contain "stripe-integration": a search is a contains-match
    my $ac = StripeSync::Fake->new(api => 'activecampaign',
        seed => { tags => ['stripe-integration-legacy', 'old stripe-integration'] });
    run_preset(preset => 'activecampaign', provider => $ac);

    my $mark = $ac->mark;
    $s->send('charge.succeeded', charge(id => 'ch_AC1', customer => 'cus_AC',
             email => 'ann@example.org', name => 'Ann Active'));
    settle('charge');
    my $st = $ac->state;
    my ($contact) = values %{ $st->{contacts} };
    is($contact->{email}, 'ann@example.org', 'contact synced');
    is($contact->{firstName}, 'Ann', 'first name');
    is($contact->{lastName}, 'Active', 'last name');
    my %tagname = map { $_->{id} => $_->{tag} } @{ $st->{tags} };
    my $tags_of = sub {
        my $st = $ac->state;
        my %n = map { $_->{id} => $_->{tag} } @{ $st->{tags} };
        return [ sort map { $n{ $_->{tag} } } grep { $_->{contact} eq $contact->{id} }
                 values %{ $st->{contactTags} } ];
    };
    is_deeply($tags_of->(), ['stripe-integration', 'stripe-integration-charge_succeeded'],
              'tagged stripe-integration and stripe-integration-<action> (exact names)');
    is_deeply([ grep { /^POST/ } @{ calls_since($ac, $mark) } ],
              [ 'POST /contact/sync', ('POST /tags', 'POST /contactTags') x 2 ],
              'contact/sync, then each tag created (not found exactly) and applied');
    my @search = $ac->requests(since => $mark, route => '/tags', method => 'GET');
    ok(@search >= 1, 'tags searched first');
    is(scalar @{ $st->{ecomOrders} }, 0, 'no order for a charge');

    $mark = $ac->mark;
    my $inv = $s->invoice(id => 'in_AC1', customer => 'cus_AC', email => 'ann@example.org',
        name => 'Ann Active', billing_reason => 'subscription_create', amount => 2900);
    $s->send('invoice.paid', $inv);
    settle('purchase');
    is_deeply($tags_of->(), ['stripe-integration', 'stripe-integration-charge_succeeded',
                             'stripe-integration-purchase'], 'purchase tag added');
    is(scalar($ac->requests(since => $mark, method => 'POST', route => '/tags')), 1,
       'only the new tag created (stripe-integration cached or found)');
    $st = $ac->state;
    is(scalar @{ $st->{connections} }, 1, 'a Deep Data connection');
    is(scalar @{ $st->{ecomCustomers} }, 1, 'an e-commerce customer');
    is($st->{ecomCustomers}[0]{email}, 'ann@example.org', 'customer email');
    is(scalar @{ $st->{ecomOrders} }, 1, 'one order');
    my $o = $st->{ecomOrders}[0];
    is($o->{externalid}, 'in_AC1', 'externalid: the invoice');
    is($o->{totalPrice}, 2900, 'totalPrice in cents');
    is(uc $o->{currency}, 'USD', 'currency');
    is($o->{source}, 1, 'source 1 (real time: triggers automations)');
    is($o->{email}, 'ann@example.org', 'order email');
    is($o->{customerid}, $st->{ecomCustomers}[0]{id}, 'order customer');
    is(scalar @{ $o->{orderProducts} || [] }, 1, 'one product line');

    $mark = $ac->mark;
    $s->send('invoice.paid', $s->invoice(id => 'in_AC2', customer => 'cus_AC',
        email => 'ann@example.org', billing_reason => 'subscription_create',
        subscription => 'sub_AC2', amount => 4900));
    settle('second purchase');
    $st = $ac->state;
    is(scalar @{ $st->{ecomOrders} }, 2, 'second order');
    is(scalar @{ $st->{connections} }, 1, 'same connection');
    is(scalar @{ $st->{ecomCustomers} }, 1, 'same e-commerce customer');
    is(scalar($ac->requests(since => $mark, method => 'POST', route => qr{^/(connections|ecomCustomers)$})),
       0, 'not created again');
    $ac->no_violations;
    done_preset('activecampaign');
};

subtest 'activecampaign: first purchases of several customers at once' => sub {
    # nothing exists yet: every job looks for the Deep Data connection and
    # the tags at the same time; the platform refuses duplicates (422)
    my $ac = StripeSync::Fake->new(api => 'activecampaign');
    run_preset(preset => 'activecampaign', provider => $ac, concurrency => 8,
               provider_extra => { rate => 100, burst => 100 });
    for my $n (1 .. 4) {
        $s->send('invoice.paid', $s->invoice(id => "in_ACX$n", customer => "cus_ACX$n",
            email => "acx$n\@example.org", billing_reason => 'subscription_create',
            subscription => "sub_ACX$n"));
    }
    settle('four first purchases');
    my $st = $ac->state;
    is(scalar @{ $st->{connections} }, 1, 'one connection');
    is(scalar @{ $st->{ecomOrders} }, 4, 'four orders');
    is_deeply([ sort map { $_->{tag} } @{ $st->{tags} } ],
              ['stripe-integration', 'stripe-integration-purchase'], 'each tag once');
    is(scalar keys %{ $st->{contactTags} }, 8, 'two tags on each contact');
    $ac->no_violations;
    done_preset('activecampaign, concurrent');
};

subtest 'activecampaign: an automation whose answer was lost is not started twice' => sub {
    # AC adds the contact to the automation, then answers 503: the retry
    # must find it in the contact's automations, not post it again
    my $ac = StripeSync::Fake->new(api => 'activecampaign');
    $ac->seed(automations => [ { id => '7', name => 'Dunning', status => '1' } ]);
    run_preset(provider => $ac, rules => [ { on => 'payment_failed', sequence => 'Dunning' } ],
               provider_extra => { rate => 100, burst => 100 });
    $ac->fault(method => 'POST', route => '/contactAutomations', status => 503, after => 1);
    my $mark = $ac->mark;
    $s->send('invoice.payment_failed', $s->invoice(id => 'in_ACLOST', customer => 'cus_ACLOST',
        email => 'aclost@example.org', status => 'open', attempt_count => 1,
        billing_reason => 'subscription_cycle', subscription => 'sub_ACLOST'));
    settle('automation, answer lost');
    my @ca = grep { $_->{automation} eq '7' } values %{ $ac->state->{contactAutomations} };
    is(scalar @ca, 1, 'the contact entered the automation once');
    is(scalar $ac->requests(since => $mark, method => 'POST', route => '/contactAutomations'), 1,
       'posted once: the retry did not post again');
    ok(scalar $ac->requests(since => $mark, method => 'GET',
                            route => qr{^/contacts/\d+/contactAutomations$}),
       "the retry looked at the contact's automations first");
    like($c->output, qr/operation sequence "Dunning" sent by an earlier attempt: "?already in the automation/,
         'the log says so');
    $ac->no_violations;
    done_preset('activecampaign, lost answer');
};

# ----------------------------------------------------------- klaviyo ---

subtest 'klaviyo (Klaviyo)' => sub {
    my $kl = StripeSync::Fake->new(api => 'klaviyo');
    run_preset(preset => 'klaviyo', provider => $kl);

    my $paid = $s->invoice(id => 'in_KL1', customer => 'cus_KL', email => 'kay@example.org',
        name => 'Kay Klaviyo', billing_reason => 'subscription_create', amount => 2900);
    my $id1 = $s->send('invoice.paid', $paid);
    my $id2 = $s->send('invoice.payment_failed', $s->invoice(id => 'in_KL2', customer => 'cus_KL',
        email => 'kay@example.org', status => 'open', attempt_count => 2, paid => 0));
    my $id3 = $s->send('charge.refunded', charge(id => 'ch_KL', customer => 'cus_KL',
        email => 'kay@example.org', amount => 2900, refunded => 2900));
    $s->send('invoice.paid', $s->invoice(id => 'in_KLtest', customer => 'cus_KT',
        email => 'test@example.org', billing_reason => 'subscription_create'), livemode => 0);
    settle('four events');

    my $st = $kl->state;
    my @ev = sort { $a->{metric} cmp $b->{metric} } @{ $st->{events} };
    is_deeply([ map { $_->{metric} } @ev ], ['Failed Payment', 'Refunded Payment', 'Successfully Paid'],
              'one event per metric');
    is_deeply([ grep { $_->{duplicate} } @ev ], [], 'none a duplicate');
    is_deeply([ map { $_->{email} } @ev ], [ ('kay@example.org') x 3 ], 'on the profile by email');
    ok(!grep({ ($_->{email} // '') eq 'test@example.org' } @ev), 'test-mode event: nothing');
    ok(!grep({ ($_->{attributes}{email} // '') eq 'test@example.org' } values %{ $st->{profiles} }),
       'test-mode event: no profile');
    my %m = map { $_->{metric} => $_ } @ev;
    is($m{'Successfully Paid'}{properties}{Invoice}, 'in_KL1', 'Successfully Paid: Invoice');
    ok(defined $m{'Successfully Paid'}{properties}{Currency}, 'Successfully Paid: Currency');
    is($m{'Failed Payment'}{properties}{AttemptCount}, 2, 'Failed Payment: AttemptCount');
    is($m{'Failed Payment'}{properties}{Invoice}, 'in_KL2', 'Failed Payment: Invoice');
    ok(defined $m{'Refunded Payment'}{properties}{Amount}, 'Refunded Payment: Amount');
    ok(defined $_->{unique_id} && length $_->{unique_id}, "$_->{metric}: a unique_id ($_->{unique_id})")
        for @ev;
    my %u = map { $_->{unique_id} => 1 } @ev;
    is(scalar keys %u, 3, 'unique_ids differ');
    for my $r ($kl->requests) {
        is($r->{headers}{revision}, '2026-07-15', "$r->{method} $r->{route}: revision header");
    }
    $kl->no_violations;
    done_preset('klaviyo');
};

# -------------------------------------------------------- customerhub ---

subtest 'customerhub (Kit)' => sub {
    my $kit = StripeSync::Fake->new(api => 'kit');
    run_preset(preset => 'customerhub', provider => $kit);
    my $tags_of = sub {
        my $st = $kit->state;
        my ($u) = grep { $_->{email_address} eq $_[0] } values %{ $st->{subscribers} };
        return [] unless $u;
        return [ sort map { $_->{name} } grep { $st->{taggings}{ $_->{id} }{ $u->{id} } }
                 @{ $st->{tags} } ];
    };
    $s->send('invoice.paid', $s->invoice(id => 'in_CH1', customer => 'cus_CH',
        email => 'cleo@example.org', billing_reason => 'subscription_create',
        subscription => 'sub_CH'), created => $now - 100);
    settle('purchase');
    is_deeply($tags_of->('cleo@example.org'), ['customer'], 'access granted: tag "customer"');
    $s->send('customer.subscription.deleted', $s->subscription(id => 'sub_CH',
        customer => 'cus_CH', status => 'canceled'), created => $now - 10);
    settle('cancellation');
    is_deeply($tags_of->('cleo@example.org'), [], 'access removed when the subscription ends');
    like($c->output, qr/track|skip/i, 'the activity (track) Kit cannot express is logged as skipped');
    $kit->no_violations;
    done_preset('customerhub');
};

finish();
