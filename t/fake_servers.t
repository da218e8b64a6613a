# The fake APIs the consumer's tests talk to (t/lib/StripeSync/Fake.pm):
# each flavour's happy path, its auth failures, the schema checks, fault
# injection and the HTTP plumbing (keep-alive, pipelining, chunked, Expect).
# If these fail, no consumer test can be trusted.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(hmac_sha256_hex);
use HTTP::Tiny;
use MIME::Base64 qw(encode_base64);
use Test::More;
use Time::HiRes qw(time sleep);
use StripeSync::Test;
use StripeSync::Fake;

# A request with the flavour's credentials (unless headers say otherwise).
sub call {
    my ($fake, $method, $route, %o) = @_;
    my %h;
    if (!$o{noauth}) {
        %h = $fake->api eq 'kit' ? ('X-Kit-Api-Key' => $fake->key)
           : $fake->api eq 'activecampaign' ? ('Api-Token' => $fake->key)
           : $fake->api eq 'klaviyo' ? ('Authorization' => 'Klaviyo-API-Key ' . $fake->key,
                                        'revision' => '2026-07-15')
           : $fake->api eq 'stripe' ? ('Authorization' => 'Bearer ' . $fake->key)
           : ();
    }
    %h = (%h, %{ $o{headers} || {} });
    delete $h{$_} for grep { !defined $h{$_} } keys %h;
    my $content;
    if (exists $o{json}) {
        $content = json_encode($o{json});
        $h{'Content-Type'} //= $fake->api eq 'klaviyo'
            ? 'application/vnd.api+json' : 'application/json';
    }
    $content = $o{raw} if defined $o{raw};
    return http_request($method, $fake->base . $route, headers => \%h,
        content => $content, timeout => $o{timeout} // 10);
}

# Sends $data on a new connection and reads until EOF (or 5 s).
sub read_all {
    my ($port, $data) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or die "connect: $!";
    syswrite $s, $data;
    my ($buf, $deadline) = ('', time + 5);
    while (time < $deadline && IO::Select->new($s)->can_read(1)) {
        my $n = sysread $s, $buf, 65536, length $buf;
        last unless $n;
    }
    close $s;
    return $buf;
}

# ---------------------------------------------------------------- kit ---

subtest 'kit' => sub {
    my $kit = StripeSync::Fake->new(api => 'kit',
        seed => { sequences => ['Onboarding', { name => 'Paused', active => 0 }],
                  forms => ['Lead magnet'], tags => ['Existing'] });
    like($kit->base, qr{^http://127\.0\.0\.1:\d+/v4$}, 'base has /v4');

    my $r = call($kit, 'GET', '/account', noauth => 1);
    is($r->{status}, 401, 'no key: 401');
    is_deeply($r->{json}, { errors => ['The access token is invalid'] },
              'Kit error shape');
    $r = call($kit, 'GET', '/account', headers => { 'X-Kit-Api-Key' => 'nope' });
    is($r->{status}, 401, 'wrong key: 401');
    $r = call($kit, 'GET', '/account', headers => { 'X-Kit-Api-Key' => undef,
        Authorization => 'Bearer ' . $kit->oauth });
    is($r->{status}, 200, 'OAuth bearer accepted');
    is($r->{json}{account}{id}, 9001, 'account');

    $r = call($kit, 'POST', '/subscribers',
              json => { email_address => 'ada@example.org', first_name => 'Ada' });
    is($r->{status}, 201, 'new subscriber: 201');
    my $sid = $r->{json}{subscriber}{id};
    ok($sid, "subscriber id $sid");
    $r = call($kit, 'POST', '/subscribers', json => { email_address => 'ada@example.org',
              first_name => 'Augusta', fields => { plan => 'gold' } });
    is($r->{status}, 200, 'existing subscriber: 200');
    is($r->{json}{subscriber}{id}, $sid, 'same id');
    is($r->{json}{subscriber}{first_name}, 'Augusta', 'first name updated');
    is_deeply($r->{json}{subscriber}{fields}, { plan => 'gold' },
              'free-form fields accepted (the spec\'s example fields are not required)');
    $r = call($kit, 'POST', '/subscribers', json => { email_address => 'not-an-email' });
    is($r->{status}, 422, 'invalid email: 422');

    $r = call($kit, 'POST', '/tags', json => { name => 'Buyer' });
    is($r->{status}, 201, 'new tag: 201');
    my $tid = $r->{json}{tag}{id};
    $r = call($kit, 'POST', '/tags', json => { name => 'Buyer' });
    is($r->{status}, 200, 'existing tag: 200');
    is($r->{json}{tag}{id}, $tid, 'same tag id');

    call($kit, 'POST', '/tags', json => { name => "T$_" }) for 1 .. 4;
    my (@names, $cursor, $pages);
    do {
        $r = call($kit, 'GET', '/tags?per_page=2' . (defined $cursor ? "&after=$cursor" : ''));
        is($r->{status}, 200, 'tags page') or last;
        push @names, map { $_->{name} } @{ $r->{json}{tags} };
        $cursor = $r->{json}{pagination}{end_cursor};
        $pages++;
    } while ($r->{json}{pagination}{has_next_page} && $pages < 10);
    is($pages, 3, 'six tags in pages of two');
    is_deeply([ sort @names ], [ sort qw(Existing Buyer T1 T2 T3 T4) ], 'every tag listed once');

    $r = call($kit, 'POST', "/tags/$tid/subscribers", json => { email_address => 'ada@example.org' });
    is($r->{status}, 201, 'tagged: 201');
    $r = call($kit, 'POST', "/tags/$tid/subscribers", json => { email_address => 'ada@example.org' });
    is($r->{status}, 200, 'tagged again: 200');
    $r = call($kit, 'POST', "/tags/999999/subscribers", json => { email_address => 'ada@example.org' });
    is($r->{status}, 404, 'unknown tag: 404');
    is_deeply($r->{json}, { errors => ['Not Found'] }, '404 body');

    $r = call($kit, 'GET', '/subscribers?email_address=ada%40example.org&status=all');
    is($r->{status}, 200, 'find subscriber');
    is($r->{json}{subscribers}[0]{id}, $sid, 'by email');
    $r = call($kit, 'GET', '/subscribers?email_address=nobody%40example.org');
    is_deeply($r->{json}{subscribers}, [], 'unknown email: empty list');

    $r = call($kit, 'DELETE', "/tags/$tid/subscribers/$sid");
    is($r->{status}, 204, 'untag: 204');
    is($r->{content} // '', '', 'no body');
    $r = call($kit, 'DELETE', "/tags/$tid/subscribers/$sid");
    is($r->{status}, 404, 'untag again: 404');

    my $st = $kit->state;
    my ($seq) = grep { $_->{name} eq 'Onboarding' } @{ $st->{sequences} };
    my ($paused) = grep { $_->{name} eq 'Paused' } @{ $st->{sequences} };
    my ($form) = @{ $st->{forms} };
    $r = call($kit, 'POST', "/sequences/$seq->{id}/subscribers", json => { email_address => 'ada@example.org' });
    is($r->{status}, 201, 'sequence: 201');
    $r = call($kit, 'POST', "/sequences/$seq->{id}/subscribers", json => { email_address => 'ada@example.org' });
    is($r->{status}, 200, 'sequence again: 200');
    $r = call($kit, 'POST', "/sequences/$paused->{id}/subscribers", json => { email_address => 'ada@example.org' });
    is($r->{status}, 422, 'inactive sequence: 422');
    $r = call($kit, 'POST', "/forms/$form->{id}/subscribers", json => { email_address => 'ada@example.org' });
    is($r->{status}, 201, 'form: 201');
    $r = call($kit, 'POST', "/forms/$form->{id}/subscribers", json => { email_address => 'ghost@example.org' });
    is($r->{status}, 422, 'form, unknown subscriber: 422');
    $r = call($kit, 'GET', '/sequences');
    is_deeply([ map { $_->{name} } @{ $r->{json}{sequences} } ], ['Onboarding', 'Paused'],
              'GET /sequences');

    my $purchase = { purchase => { email_address => 'ada@example.org',
        transaction_id => 'in_123', status => 'paid', currency => 'USD',
        subtotal => 249.0, total => 249.0, transaction_time => '2025-04-23T18:05:06Z',
        products => [ { name => 'Course', pid => 'prod_1', lid => 'price_1',
                        quantity => 1, unit_price => 249.0 } ] } };
    $r = call($kit, 'POST', '/purchases', json => $purchase);
    is($r->{status}, 401, 'purchase with the API key: 401 (OAuth only)');
    like($r->{json}{errors}[0], qr/OAuth/, 'says OAuth');
    $r = call($kit, 'POST', '/purchases', json => $purchase,
              headers => { 'X-Kit-Api-Key' => undef, Authorization => 'Bearer ' . $kit->oauth });
    is($r->{status}, 201, 'purchase with OAuth: 201');
    is($r->{json}{purchase}{transaction_id}, 'in_123', 'purchase echoed');

    $kit->no_violations('kit: no violations so far');

    # schema violations: bad types, missing members, unknown routes
    my $mark = $kit->mark;
    my $bad = json_decode(json_encode($purchase));
    $bad->{purchase}{products}[0]{unit_price} = '249.00';
    delete $bad->{purchase}{currency};
    $r = call($kit, 'POST', '/purchases', json => $bad,
              headers => { 'X-Kit-Api-Key' => undef, Authorization => 'Bearer ' . $kit->oauth });
    is($r->{status}, 422, 'purchase off the schema: 422');
    $r = call($kit, 'POST', '/tags', json => { title => 'x' });
    is($r->{status}, 422, 'tag without name: 422');
    $r = call($kit, 'GET', '/nonexistent');
    is($r->{status}, 404, 'unknown path: 404');
    $r = call($kit, 'PATCH', '/tags', json => { name => 'x' });
    is($r->{status}, 404, 'unknown method: 404');
    $r = http_request('GET', $kit->url('/v3/tags'), headers => { 'X-Kit-Api-Key' => $kit->key });
    is($r->{status}, 404, 'outside the prefix: 404');
    my @v = $kit->violations;
    is(scalar @v, 5, 'five requests recorded as violations');
    my %why = map { ("$_->{method} $_->{path}" => join('; ', @{ $_->{violations} })) } @v;
    like($why{'POST /v4/purchases'}, qr/\$\.purchase\.products\[0\]\.unit_price: expected number, got string/,
         'purchase: unit_price type');
    like($why{'POST /v4/purchases'}, qr/required member 'currency' missing/, 'purchase: currency missing');
    like($why{'POST /v4/tags'}, qr/required member 'name' missing/, 'tag: name missing');
    like($why{'GET /v4/nonexistent'}, qr/no such path/, 'unknown path');
    like($why{'PATCH /v4/tags'}, qr/no such method/, 'unknown method');
    like($why{'GET /v3/tags'}, qr/outside the API prefix/, 'outside prefix');
    is(scalar($kit->requests(since => $mark)), 5, 'since => mark');

    # the log
    my ($p) = $kit->requests(method => 'POST', route => '/purchases', status => 201);
    ok($p, 'the purchase is in the log');
    is($p->{json}{purchase}{transaction_id}, 'in_123', 'decoded body');
    is($p->{headers}{authorization}, 'Bearer ' . $kit->oauth, 'headers, lowercase names');
    is($p->{path}, '/v4/purchases', 'path');
    ok($p->{t} > 1e12 && $p->{done_t} >= $p->{t}, 'times in ms');
    is($kit->count(method => 'POST', route => qr{^/tags/\d+/subscribers$}), 3, 'regex filter');
    is($kit->state->{purchases}[0]{transaction_id}, 'in_123', 'state: purchases');
};

# ------------------------------------------------------ activecampaign ---

subtest 'activecampaign' => sub {
    my $ac = StripeSync::Fake->new(api => 'activecampaign',
        seed => { tags => ['vip', 'vip-gold', 'stripe-integration'],
                  automations => ['Welcome', 'Dunning', 'Win-back',
                                  { name => 'Off', status => 2 }],
                  lists => ['Customers'], fields => ['Plan'] });
    like($ac->base, qr{/api/3$}, 'base has /api/3');

    my $r = call($ac, 'GET', '/users/me', noauth => 1);
    is($r->{status}, 401, 'no token: 401');
    ok(exists $r->{json}{message}, 'message shape');
    $r = call($ac, 'GET', '/users/me', headers => { 'Api-Token' => 'wrong' });
    is($r->{status}, 403, 'wrong token: 403');
    $r = call($ac, 'GET', '/users/me');
    is($r->{status}, 200, 'users/me');

    $r = call($ac, 'POST', '/contact/sync', json => { contact => {
        email => 'ada@example.org', firstName => 'Ada', lastName => 'Lovelace',
        fieldValues => [ { field => '1', value => 'gold' } ] } });
    is($r->{status}, 201, 'contact/sync new: 201');
    my $cid = $r->{json}{contact}{id};
    like($cid, qr/^\d+$/, 'contact id (a string)');
    $r = call($ac, 'POST', '/contact/sync', json => { contact => { email => 'ada@example.org',
        firstName => 'Augusta' } });
    is($r->{status}, 200, 'contact/sync existing: 200');
    is($r->{json}{contact}{id}, $cid, 'same contact');
    $r = call($ac, 'POST', '/contact/sync', json => { contact => { email => 'bad' } });
    is($r->{status}, 422, 'bad email: 422');
    is($r->{json}{errors}[0]{code}, 'email_invalid', 'errors shape');
    $r = call($ac, 'GET', '/contacts?email=ada%40example.org');
    is($r->{json}{contacts}[0]{id}, $cid, 'contacts?email=');
    is($r->{json}{meta}{total}, '1', 'meta.total');

    $r = call($ac, 'GET', '/tags?search=vip');
    is_deeply([ sort map { $_->{tag} } @{ $r->{json}{tags} } ], ['vip', 'vip-gold'],
              'search is a contains-match');
    $r = call($ac, 'POST', '/tags', json => { tag => { tag => 'buyer', tagType => 'contact',
                                                        description => '' } });
    is($r->{status}, 201, 'new tag: 201');
    my $tag = $r->{json}{tag}{id};
    $r = call($ac, 'POST', '/tags', json => { tag => { tag => 'buyer', tagType => 'contact' } });
    is($r->{status}, 422, 'duplicate tag: 422');
    is($r->{json}{errors}[0]{code}, 'duplicate', 'duplicate code');

    $r = call($ac, 'POST', '/contactTags', json => { contactTag => { contact => "$cid", tag => $tag + 0 } });
    is($r->{status}, 201, 'contactTag: 201 (ids as string or number)');
    my $ctid = $r->{json}{contactTag}{id};
    $r = call($ac, 'POST', '/contactTags', json => { contactTag => { contact => $cid, tag => $tag } });
    is($r->{status}, 200, 'contactTag again: 200, no duplicate');
    is($r->{json}{contactTag}{id}, $ctid, 'same contactTag');
    $r = call($ac, 'GET', "/contacts/$cid/contactTags");
    is_deeply([ map { $_->{tag} } @{ $r->{json}{contactTags} } ], [$tag], 'contacts/{id}/contactTags');
    $r = call($ac, 'DELETE', "/contactTags/$ctid");
    is($r->{status}, 200, 'untag: 200');
    is_deeply($r->{json}, {}, 'empty object');
    $r = call($ac, 'DELETE', "/contactTags/$ctid");
    is($r->{status}, 404, 'untag again: 404');
    like($r->{json}{message}, qr/No Result found/, 'message shape');
    $r = call($ac, 'POST', '/contactTags', json => { contactTag => { contact => 999, tag => $tag } });
    is($r->{status}, 404, 'unknown contact: 404');

    $r = call($ac, 'GET', '/automations?limit=2&offset=2');
    is_deeply([ map { $_->{name} } @{ $r->{json}{automations} } ], ['Win-back', 'Off'],
              'automations paged (limit, offset)');
    is($r->{json}{meta}{total}, '4', 'total');
    my %auto = map { $_->{name} => $_->{id} } @{ call($ac, 'GET', '/automations?limit=100')->{json}{automations} };
    for (1, 2) {
        $r = call($ac, 'POST', '/contactAutomations',
                  json => { contactAutomation => { contact => $cid, automation => $auto{Dunning} } });
        is($r->{status}, 201, "contactAutomation $_: 201");
    }
    is(scalar keys %{ $ac->state->{contactAutomations} }, 2,
       'contactAutomations are not idempotent (two records)');
    $r = call($ac, 'POST', '/contactAutomations',
              json => { contactAutomation => { contact => $cid, automation => $auto{Off} } });
    is($r->{status}, 422, 'inactive automation: 422');

    $r = call($ac, 'GET', '/lists?filters[name]=Customers');
    my $list = $r->{json}{lists}[0]{id};
    ok($list, 'lists by name');
    $r = call($ac, 'POST', '/contactLists', json => { contactList => { list => $list, contact => $cid, status => 1 } });
    is($r->{status}, 201, 'contactList: 201');
    $r = call($ac, 'GET', '/fields');
    is($r->{json}{fields}[0]{title}, 'Plan', 'fields');

    $r = call($ac, 'POST', '/connections', json => { connection => { service => 'stripe-sync',
        externalid => 'acct_1', name => 'Stripe', logoUrl => 'https://example.org/l.png',
        linkUrl => 'https://example.org/' } });
    is($r->{status}, 201, 'connection: 201');
    my $conn = $r->{json}{connection}{id};
    $r = call($ac, 'POST', '/connections', json => { connection => { service => 'stripe-sync',
        externalid => 'acct_1', name => 'Stripe', logoUrl => 'x', linkUrl => 'y' } });
    is($r->{status}, 422, 'duplicate connection: 422');
    $r = call($ac, 'POST', '/ecomCustomers', json => { ecomCustomer => { connectionid => $conn,
        externalid => 'cus_1', email => 'ada@example.org', acceptsMarketing => '1' } });
    is($r->{status}, 201, 'ecomCustomer: 201');
    my $cust = $r->{json}{ecomCustomer}{id};
    my $order = { ecomOrder => { externalid => 'in_1', source => 1,
        email => 'ada@example.org', totalPrice => 24900, currency => 'USD',
        connectionid => $conn, customerid => $cust,
        externalCreatedDate => '2025-04-23T18:05:06Z',
        orderProducts => [ { name => 'Course', price => 24900, quantity => 1,
                             externalid => 'prod_1' } ] } };
    $r = call($ac, 'POST', '/ecomOrders', json => $order);
    is($r->{status}, 201, 'ecomOrder: 201 (orderProducts an array, no externalcheckoutid)')
        or diag $r->{content};
    $r = call($ac, 'POST', '/ecomOrders', json => $order);
    is($r->{status}, 422, 'duplicate externalid: 422');
    is($r->{json}{errors}[0]{code}, 'duplicate', 'duplicate order');
    $ac->no_violations('activecampaign: no violations so far');

    my $mark = $ac->mark;
    my $bad = json_decode(json_encode($order));
    delete $bad->{ecomOrder}{externalid};
    $r = call($ac, 'POST', '/ecomOrders', json => $bad);
    is($r->{status}, 422, 'no externalid nor externalcheckoutid: 422');
    $bad = json_decode(json_encode($order));
    $bad->{ecomOrder}{externalid} = 'in_2';
    $bad->{ecomOrder}{orderProducts} = $bad->{ecomOrder}{orderProducts}[0];
    $bad->{ecomOrder}{totalPrice} = '249.00';
    $r = call($ac, 'POST', '/ecomOrders', json => $bad);
    is($r->{status}, 422, 'orderProducts as an object, price as "249.00": 422');
    $r = call($ac, 'GET', '/nope');
    is($r->{status}, 404, 'unknown route: 404');
    is_deeply($r->{json}, {}, 'the {} error shape');
    my @v = $ac->requests(since => $mark, violations => 1);
    is(scalar @v, 3, 'three violations');
    like(join(' ', @{ $v[0]{violations} }), qr/externalid or externalcheckoutid/, 'alternatives');
    like(join(' ', @{ $v[1]{violations} }), qr/orderProducts: expected array/, 'orderProducts');
    like(join(' ', @{ $v[1]{violations} }), qr/totalPrice: expected integer/, 'totalPrice');
};

# ------------------------------------------------------------ klaviyo ---

subtest 'klaviyo' => sub {
    my $kl = StripeSync::Fake->new(api => 'klaviyo',
        seed => { lists => [ 'VIP', map { "List $_" } 1 .. 11 ] });
    like($kl->base, qr{/api$}, 'base has /api');

    my $r = call($kl, 'GET', '/accounts', noauth => 1);
    is($r->{status}, 401, 'no key: 401');
    is($r->{json}{errors}[0]{code}, 'not_authenticated', 'JSON:API error');
    $r = call($kl, 'GET', '/accounts', headers => { revision => '2024-10-15' });
    is($r->{status}, 400, 'other revision: 400');
    $r = call($kl, 'GET', '/accounts', headers => { revision => undef });
    is($r->{status}, 400, 'no revision: 400');
    is(scalar $kl->violations, 2, 'revision problems are violations');
    $r = call($kl, 'GET', '/accounts');
    is($r->{status}, 200, 'accounts');
    is($r->{json}{data}[0]{type}, 'account', 'account');

    my $profile = { data => { type => 'profile', attributes => {
        email => 'ada@example.org', first_name => 'Ada', last_name => 'Lovelace',
        properties => { card_exp_month => 12 } } } };
    $r = call($kl, 'POST', '/profile-import', json => $profile);
    is($r->{status}, 201, 'profile-import new: 201');
    my $pid = $r->{json}{data}{id};
    $r = call($kl, 'POST', '/profile-import', json => $profile);
    is($r->{status}, 200, 'profile-import existing: 200');
    is($r->{json}{data}{id}, $pid, 'same profile');

    my $event = sub {
        my ($uid, %x) = @_;
        return { data => { type => 'event', attributes => {
            properties => { Invoice => 'in_1', Currency => 'usd' },
            time => '2025-04-23T18:05:06Z', value => 249, value_currency => 'USD',
            unique_id => $uid,
            metric => { data => { type => 'metric', attributes => { name => 'Successfully Paid' } } },
            profile => { data => { type => 'profile', attributes => { email => 'ada@example.org' } } },
            %x } } };
    };
    my $mark = $kl->mark;
    $r = call($kl, 'POST', '/events', json => $event->('evt_1'));
    is($r->{status}, 202, 'event: 202');
    is($r->{content}, '', 'no body');
    $r = call($kl, 'POST', '/events', json => $event->('evt_1'));
    is($r->{status}, 202, 'same unique_id: 202 too');
    $r = call($kl, 'POST', '/events', json => $event->('evt_2'));
    my $ev = $kl->state->{events};
    is_deeply([ map { "$_->{unique_id}:$_->{duplicate}" } @$ev ], ['evt_1:0', 'evt_1:1', 'evt_2:0'],
              'the second evt_1 is a duplicate');
    is($ev->[0]{profile_id}, $pid, 'event on the profile');

    $r = call($kl, 'POST', '/events', json => $event->('evt_3', bogus => 1));
    is($r->{status}, 400, 'unknown attribute: 400');
    $r = call($kl, 'POST', '/events', json => $event->('evt_4', time => 1745431506));
    is($r->{status}, 400, 'time as a number: 400');
    $r = call($kl, 'POST', '/events', json => $event->('evt_5'),
              headers => { 'Content-Type' => 'application/json' });
    ok($r->{status} == 400 || $r->{status} == 415, "application/json: $r->{status}");
    my @v = $kl->requests(since => $mark, violations => 1);
    is(scalar @v, 3, 'three violations');
    like(join(' ', map { @{ $_->{violations} } } @v), qr/bogus: unknown member/, 'unknown member named');
    like(join(' ', map { @{ $_->{violations} } } @v), qr/time: expected string/, 'time type named');
    like(join(' ', map { @{ $_->{violations} } } @v), qr/Content-Type/, 'content type named');

    $r = call($kl, 'GET', '/lists?filter=' . 'equals(name,%22VIP%22)');
    is(scalar @{ $r->{json}{data} }, 1, 'lists filter equals(name,...)');
    my $vip = $r->{json}{data}[0]{id};
    my ($n, $next, @all) = (0, '/lists');
    while (defined $next && $n++ < 5) {
        $r = call($kl, 'GET', $next);
        push @all, map { $_->{attributes}{name} } @{ $r->{json}{data} };
        $next = $r->{json}{links}{next};
        $next =~ s{^\Q@{[ $kl->base ]}\E}{} if defined $next;
    }
    is(scalar @all, 12, 'lists paged by links.next (10 a page)');
    is($n, 2, 'two pages');

    $r = call($kl, 'POST', "/lists/$vip/relationships/profiles",
              json => { data => [ { type => 'profile', id => $pid } ] });
    is($r->{status}, 204, 'add to list: 204');
    is_deeply([ keys %{ $kl->state->{list_members}{$vip} } ], [$pid], 'member');
    $r = call($kl, 'POST', "/lists/NOPE/relationships/profiles",
              json => { data => [ { type => 'profile', id => $pid } ] });
    is($r->{status}, 404, 'unknown list: 404');
};

# ------------------------------------------------------------- stripe ---

subtest 'stripe' => sub {
    my @items = map { { id => "li_$_", object => 'item', amount_total => 1000 * $_,
                        currency => 'usd', quantity => 1, description => "Item $_",
                        price => { id => "price_$_", product => "prod_$_" } } } 1 .. 5;
    my @events = map { { id => "evt_$_", object => 'event', created => 1700000000 + $_,
        type => $_ % 2 ? 'invoice.paid' : 'customer.subscription.created',
        data => { object => {} }, ($_ == 3 ? (_delivery_success => 0) : ()) } } 1 .. 6;
    my $st = StripeSync::Fake->new(api => 'stripe', seed => {
        customers => [ { id => 'cus_A', object => 'customer', email => 'a@example.org',
                         name => 'Ada', created => 1 },
                       { id => 'cus_B', object => 'customer', email => 'b@example.org',
                         created => 2 } ],
        subscriptions => [ { id => 'sub_1', object => 'subscription', customer => 'cus_A',
                             status => 'active', start_date => 1600000000, created => 5 },
                           { id => 'sub_2', object => 'subscription', customer => 'cus_B',
                             status => 'canceled', created => 6 } ],
        checkout_sessions => [ { id => 'cs_1', object => 'checkout.session' } ],
        line_items => { cs_1 => \@items },
        events => \@events,
    });
    is($st->base, $st->url, 'no prefix');

    my $r = call($st, 'GET', '/v1/customers/cus_A', noauth => 1);
    is($r->{status}, 401, 'no key: 401');
    like($r->{json}{error}{message}, qr/did not provide an API key/, 'message');
    $r = call($st, 'GET', '/v1/customers/cus_A', headers => { Authorization => 'Bearer sk_test_wrong' });
    is($r->{status}, 401, 'wrong key: 401');
    $r = call($st, 'GET', '/v1/customers/cus_A',
              headers => { Authorization => 'Basic ' . encode_base64($st->key . ':', '') });
    is($r->{status}, 200, 'basic auth too');
    $r = call($st, 'GET', '/v1/customers/cus_A');
    is($r->{json}{email}, 'a@example.org', 'customer');
    $r = call($st, 'GET', '/v1/customers/cus_X');
    is($r->{status}, 404, 'unknown customer: 404');
    is($r->{json}{error}{code}, 'resource_missing', 'resource_missing');
    $r = call($st, 'GET', '/v1/customers?limit=1');
    is_deeply([ map { $_->{id} } @{ $r->{json}{data} } ], ['cus_B'], 'newest first, limit=1');
    ok($r->{json}{has_more}, 'has_more');
    is($r->{json}{object}, 'list', 'a list');
    $r = call($st, 'GET', '/v1/customers?limit=101');
    is($r->{status}, 400, 'limit > 100: 400');

    my (@got, $after);
    for (1 .. 5) {
        $r = call($st, 'GET', '/v1/checkout/sessions/cs_1/line_items?limit=2'
                              . (defined $after ? "&starting_after=$after" : ''));
        push @got, map { $_->{id} } @{ $r->{json}{data} };
        $after = $got[-1];
        last unless $r->{json}{has_more};
    }
    is_deeply(\@got, [ map { "li_$_" } 1 .. 5 ], 'line items paged with starting_after');
    $r = call($st, 'GET', '/v1/checkout/sessions/cs_X/line_items');
    is($r->{status}, 404, 'unknown session: 404');

    $r = call($st, 'GET', '/v1/subscriptions/sub_1');
    is($r->{json}{start_date}, 1600000000, 'subscription');
    $r = call($st, 'GET', '/v1/subscriptions');
    is_deeply([ map { $_->{id} } @{ $r->{json}{data} } ], ['sub_1'], 'canceled left out by default');
    $r = call($st, 'GET', '/v1/subscriptions?status=all');
    is(scalar @{ $r->{json}{data} }, 2, 'status=all');

    $r = call($st, 'GET', '/v1/events?types[]=invoice.paid&created[gte]=1700000002');
    is_deeply([ map { $_->{id} } @{ $r->{json}{data} } ], ['evt_5', 'evt_3'], 'events: types[], created[gte]');
    $r = call($st, 'GET', '/v1/events?type=customer.*');
    is_deeply([ map { $_->{id} } @{ $r->{json}{data} } ], ['evt_6', 'evt_4', 'evt_2'], 'type wildcard');
    $r = call($st, 'GET', '/v1/events?delivery_success=false');
    is_deeply([ map { $_->{id} } @{ $r->{json}{data} } ], ['evt_3'], 'delivery_success=false');
    ok(!exists $r->{json}{data}[0]{_delivery_success}, 'hidden keys not shown');
    $r = call($st, 'GET', '/v1/events/evt_2');
    is($r->{json}{type}, 'customer.subscription.created', 'one event');

    $st->seed(customers => [ { id => 'cus_C', object => 'customer', email => 'c@example.org' } ]);
    is(call($st, 'GET', '/v1/customers/cus_C')->{json}{email}, 'c@example.org', 'seeded later');
};

# ------------------------------------------------------------ webhook ---

subtest 'webhook' => sub {
    my $wh = StripeSync::Fake->new(api => 'webhook', secret => 'whsec_hook');
    my $body = '{"event":{"id":"evt_1"}}';
    my $post = sub {
        my ($sig) = @_;
        return http_request('POST', $wh->url('/deliver'), content => $body,
            headers => { 'Content-Type' => 'application/json',
                         defined $sig ? ('X-Stripe-Sync-Signature' => $sig) : () });
    };
    my $t = int time;
    my $r = $post->("t=$t,v1=" . hmac_sha256_hex("$t.$body", 'whsec_hook'));
    is($r->{status}, 200, 'valid signature: 200');
    $r = $post->("t=$t,v1=" . hmac_sha256_hex("$t.$body", 'whsec_other'));
    is($r->{status}, 400, 'wrong secret: 400');
    my $old = $t - 1000;
    $r = $post->("t=$old,v1=" . hmac_sha256_hex("$old.$body", 'whsec_hook'));
    is($r->{status}, 400, 'old timestamp: 400');
    $r = $post->(undef);
    is($r->{status}, 400, 'no signature: 400');
    is_deeply([ map { $_->{sig_valid} } $wh->requests ], [1, 0, 0, 0], 'validity recorded');
    is_deeply([ map { $_->{sig_error} } $wh->requests ],
              ['', 'no v1 matches', 'timestamp outside tolerance', 'no X-Stripe-Sync-Signature'],
              'why recorded');
    $wh->set(status => 500);
    $r = $post->("t=$t,v1=" . hmac_sha256_hex("$t.$body", 'whsec_hook'));
    is($r->{status}, 500, 'status is scriptable');
};

# ------------------------------------------------------------- faults ---

subtest 'faults' => sub {
    my $kit = StripeSync::Fake->new(api => 'kit');
    my $acct = sub { call($kit, 'GET', '/account', @_) };

    $kit->fault(route => '/account', status => 500, times => 3);
    is_deeply([ map { $acct->()->{status} } 1 .. 4 ], [500, 500, 500, 200], '500 x3 then 200');

    $kit->fault(route => '/account', status => 429, retry_after => 2);
    my $r = $acct->();
    is($r->{status}, 429, 'scripted 429');
    is($r->{headers}{'retry-after'}, 2, 'with Retry-After');
    is($r->{content}, 'Retry later', "Kit's 429 body");
    $kit->fault(route => '/account', status => 429);
    $r = $acct->();
    ok(!exists $r->{headers}{'retry-after'}, 'or without');

    $kit->fault(method => 'POST', route => '/tags', status => 422,
                body => { errors => ['Name is taken'] });
    $r = call($kit, 'POST', '/tags', json => { name => 'X' });
    is($r->{status}, 422, 'scripted 422');
    is_deeply($r->{json}, { errors => ['Name is taken'] }, 'with its body');
    is(scalar @{ $kit->state->{tags} }, 0, 'a fault before processing changes nothing');

    $kit->fault(method => 'POST', route => '/tags', status => 500, after => 1);
    $r = call($kit, 'POST', '/tags', json => { name => 'Y' });
    is($r->{status}, 500, 'after => 1: 500');
    is_deeply([ map { $_->{name} } @{ $kit->state->{tags} } ], ['Y'], '... but the tag was created');

    $kit->fault(route => '/account', status => 503, skip => 1);
    is_deeply([ map { $acct->()->{status} } 1 .. 3 ], [200, 503, 200], 'skip => 1');

    $kit->fault(method => 'POST', route => '/tags', body_like => qr/"Z1"/, status => 500);
    is(call($kit, 'POST', '/tags', json => { name => 'Z0' })->{status}, 201, 'body_like: no match');
    is(call($kit, 'POST', '/tags', json => { name => 'Z1' })->{status}, 500, 'body_like: match');

    $kit->fault(route => '/account', hang => 1);
    my $t0 = time;
    $r = $acct->();
    my $dt = time - $t0;
    is($r->{status}, 200, 'hang 1 s then the answer');
    ok($dt >= 0.9 && $dt < 3, sprintf('took %.2f s', $dt));

    $kit->fault(method => 'POST', route => '/tags', hang => 3);
    $t0 = time;
    $r = call($kit, 'POST', '/tags', json => { name => 'Held' }, timeout => 0.5);
    is($r->{status}, 599, 'the client gave up');
    $r = $acct->();
    is($r->{status}, 200, 'others are served while one is held');
    ok(time - $t0 < 2, 'at once');
    ok(wait_until(sub { $kit->count(all => 1, route => '/tags', method => 'POST')
                        > $kit->count(route => '/tags', method => 'POST') }, 5),
       'the held request is logged as dropped');
    my ($dropped) = grep { $_->{dropped} } $kit->requests(all => 1);
    is($dropped->{json}{name}, 'Held', 'the dropped one');
    ok(!grep({ $_->{name} eq 'Held' } @{ $kit->state->{tags} }), 'apply before: not applied');

    $kit->fault(method => 'POST', route => '/tags', hang => 2, apply => 'after');
    $r = call($kit, 'POST', '/tags', json => { name => 'Applied' }, timeout => 0.5);
    is($r->{status}, 599, 'client gave up again');
    ok(grep({ $_->{name} eq 'Applied' } @{ $kit->state->{tags} }), "apply after: applied at once");

    $kit->fault(route => '/account', kind => 'nonjson');
    $r = $acct->();
    is($r->{status}, 200, 'nonjson: 200');
    like($r->{headers}{'content-type'}, qr{text/html}, 'text/html');
    ok(!defined $r->{json}, 'not JSON');

    # (HTTP::Tiny retries a GET once when the connection ends early: raw)
    my $get = "GET /v4/account HTTP/1.1\r\nHost: x\r\nX-Kit-Api-Key: "
        . $kit->key . "\r\n\r\n";
    $kit->fault(route => '/account', kind => 'truncated');
    my $all = read_all($kit->port, $get);
    my ($head, $tail) = split /\r\n\r\n/, $all, 2;
    like($head, qr{^HTTP/1.1 200}, 'truncated: a 200');
    my ($cl) = $head =~ /Content-Length: (\d+)/;
    ok($cl && length($tail) < $cl, 'with less body than its Content-Length, then EOF');
    $kit->fault(method => 'POST', route => '/tags', kind => 'truncated');
    $r = call($kit, 'POST', '/tags', json => { name => 'T' });
    is($r->{status}, 599, 'truncated body: HTTP::Tiny sees an error');

    $kit->fault(route => '/account', kind => 'close');
    is(read_all($kit->port, $get), '', 'close without answer');

    $kit->fault(route => '/account', hang => 10);
    my $held = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $kit->port) or die;
    syswrite $held, $get;
    my $held_account = sub { scalar grep { $_->{route} eq '/account' } @{ $kit->held } };
    ok(wait_until(sub { $held_account->() == 1 }, 3), 'held: listed while held');
    close $held;
    ok(wait_until(sub { !$held_account->() }, 3), 'gone once the client left');
    $kit->fault(method => 'POST', route => '/tags', kind => 'close');
    $r = call($kit, 'POST', '/tags', json => { name => 'T' });
    is($r->{status}, 599, 'close: HTTP::Tiny sees an error');

    $kit->fault(route => '/account', kind => 'huge');
    $r = $acct->(timeout => 20);
    is($r->{status}, 200, 'huge: 200');
    ok(length($r->{content}) >= 5 * 1024 * 1024, 'a 5 MB body');

    $kit->fault(route => '/account', kind => 'empty', status => 502);
    $r = $acct->();
    is($r->{status}, 502, 'empty 502');
    is($r->{content}, '', 'no body');

    $kit->fault(route => qr{^/acc}, status => 500, times => -1);
    is_deeply([ map { $acct->()->{status} } 1 .. 3 ], [500, 500, 500], 'times => -1: forever');
    $kit->clear_faults;
    is($acct->()->{status}, 200, 'clear_faults');

    $kit->set(rate_limit => { max => 3, per => 2, retry_after => 1 });
    my @s = map { $acct->()->{status} } 1 .. 5;
    is_deeply(\@s, [200, 200, 200, 429, 429], 'rate_limit: 3 in 2 s');
    is(($kit->requests)[-1]{fault}, 'rate limit', 'logged as such');
    sleep 2.1;
    is($acct->()->{status}, 200, 'then the window moves on');
    $kit->set(rate_limit => undef);

    my @f = grep { $_->{fault} } $kit->requests;
    ok(scalar @f >= 10, 'faulted requests are marked in the log');
};

# ----------------------------------------------------------- plumbing ---

subtest 'http plumbing' => sub {
    my $st = StripeSync::Fake->new(api => 'stripe', seed => {
        customers => [ { id => 'cus_A', object => 'customer', email => 'a@example.org' } ] });
    my $auth = 'Bearer ' . $st->key;

    my $ht = HTTP::Tiny->new(keep_alive => 1, timeout => 5);
    my $mark = $st->mark;
    $ht->get($st->url('/v1/customers/cus_A'), { headers => { Authorization => $auth } }) for 1 .. 3;
    my @r = $st->requests(since => $mark);
    is(scalar @r, 3, 'three requests');
    is(scalar(keys %{ { map { $_->{conn} => 1 } @r } }), 1, 'over one kept-alive connection');

    my $req = "GET /v1/customers/cus_A HTTP/1.1\r\nHost: x\r\nAuthorization: $auth\r\n\r\n";
    my @res = raw_http(port => $st->port, data => $req . $req, responses => 2);
    is_deeply([ map { $_->{status} } @res ], [200, 200], 'pipelined: two answers');
    is($res[1]{json}{id}, 'cus_A', 'second answer whole');

    my $body = '{"x":"' . ('a' x 3000) . '"}';
    my $chunked = "POST /v1/customers/cus_A HTTP/1.1\r\nHost: x\r\nAuthorization: $auth\r\n"
        . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    for (my $i = 0; $i < length $body; $i += 1000) {
        my $c = substr $body, $i, 1000;
        $chunked .= sprintf("%x\r\n", length $c) . "$c\r\n";
    }
    $chunked .= "0\r\n\r\n";
    @res = raw_http(port => $st->port, data => $chunked);
    is($res[0]{status}, 404, 'chunked POST answered (no POST route: 404)');
    my ($last) = ($st->requests)[-1];
    is($last->{body}, $body, 'chunked body reassembled');
    is($res[0]{headers}{connection}, 'close', 'Connection: close honoured');

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $st->port) or die;
    syswrite $s, "POST /v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: $auth\r\n"
        . "Content-Length: 4\r\nExpect: 100-continue\r\n\r\n";
    my $got = '';
    IO::Select->new($s)->can_read(3) and sysread $s, $got, 1000;
    like($got, qr{^HTTP/1.1 100 Continue\r\n\r\n}, 'Expect: 100-continue answered');
    syswrite $s, "{}\r\n";
    my $rest = '';
    while (IO::Select->new($s)->can_read(3)) {
        my $n = sysread $s, $rest, 4096, length $rest;
        last if !$n || $rest =~ /\r\n\r\n.*\}/s;
    }
    like($rest, qr{^HTTP/1.1 404}, 'then the answer');
    close $s;

    SKIP: {
        skip 'no curl', 2 unless -x '/usr/bin/curl';
        my $big = '{"pad":"' . ('b' x 70000) . '"}';
        my $f = temp_dir('curl') . '/body.json';
        spew($f, $big);
        my $out = `curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: $auth' -H 'Content-Type: application/json' --data-binary \@$f @{[ $st->url('/v1/customers') ]} 2>&1`;
        is($out, '404', 'curl POST with a 70 KB body answered');
        is(($st->requests)[-1]{body}, $big, 'body received whole');
    }

    $st->stop;
    ok(!$st->alive, 'stop');
};

finish();
