# The webhook endpoint: verification, normalization, the one Redis script
# (dedupe + customer map + queue), responses and log variables (SPEC 3-5, 7).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use StripeSync::Test;

require_module();

my $SECRET = 'whsec_main_0123456789abcdef';
my @FILE_SECRETS = ('whsec_file_one_AAAA', 'whsec_file_two_BBBB');
my $THIRD = 'whsec_third_CCCC';
my $TTL = 2 * 86400;

my $dir = temp_dir('webhook');
spew("$dir/two.whsec", join("\n", @FILE_SECRETS) . "\n", 0600);
# as saved by a Windows editor: CRLF, a trailing blank line
spew("$dir/crlf.whsec", "whsec_crlf_one_DDDD\r\nwhsec_crlf_two_EEEE\r\n\r\n", 0600);

my $redis = start_redis();
my $ng = start_nginx(
    http => "stripe_sync_redis 127.0.0.1:$redis->{port};
             log_format hooks '\$stripe_sync_result|\$stripe_sync_event_id|'
                              '\$stripe_sync_event_type|\$status|\$request_uri';",
    conf => "
        access_log %%PREFIX%%/hooks.log hooks;
        client_body_buffer_size 16k;
        client_max_body_size 1m;
        location = /hook {
            stripe_sync;
            stripe_sync_secret $SECRET;
            stripe_sync_dedup_ttl 2d;
        }
        location = /hook-multi {
            stripe_sync;
            stripe_sync_secret_file $dir/two.whsec;
            stripe_sync_secret $THIRD;
        }
        location = /hook-live {
            stripe_sync;
            stripe_sync_secret $SECRET;
            stripe_sync_livemode live;
        }
        location = /hook-crlf {
            stripe_sync;
            stripe_sync_secret_file $dir/crlf.whsec;
        }
        location = /hook-vector {
            stripe_sync;
            stripe_sync_secret webhook_secret;
            stripe_sync_tolerance 3650d;
        }
        location = /hook-acme {
            stripe_sync;
            stripe_sync_secret $SECRET;
            stripe_sync_prefix acme;
        }",
);

my $URL = $ng->url('/hook');

# ------------------------------------------------------------- helpers ---

sub invoice {
    my (%o) = @_;
    my $in  = $o{id} // unique_id('in');
    my $cus = $o{customer} // unique_id('cus');
    return {
        id => $in, object => 'invoice', customer => $cus,
        customer_email => $o{email} // 'ada@example.org',
        customer_name => 'Ada Lovelace',
        billing_reason => $o{billing_reason} // 'subscription_cycle',
        attempt_count => $o{attempt_count} // 1,
        amount_paid => 24900, amount_due => 24900, currency => 'usd',
        status => $o{status} // 'paid',
        lines => { object => 'list', has_more => JSON::PP::false, data => [{
            id => 'il_1', object => 'line_item', amount => 24900,
            currency => 'usd', quantity => 1,
            description => "1 \x{d7} Pro (at \$249.00 / year)",
            pricing => { type => 'price_details',
                price_details => { price => 'price_PRO', product => 'prod_PRO' } },
            parent => { type => 'subscription_item_details',
                subscription_item_details => { subscription => 'sub_1' } },
        }] },
        parent => { type => 'subscription_details',
                    subscription_details => { subscription => 'sub_1' } },
    };
}

sub records_for {
    my ($id, %o) = @_;
    return grep { $_->{id} eq $id } @{ $redis->queue(%o) };
}

# status + decoded body; diag on mismatch
sub expect {
    my ($res, $status, $body, $name) = @_;
    my $ok = is($res->{status}, $status, "$name: $status");
    if (ref $body eq 'HASH') {
        $ok &= is_deeply($res->{json}, $body, "$name: body");
    } elsif (ref $body eq 'Regexp') {
        $ok &= like($res->{json} && $res->{json}{error} // '', $body,
                    "$name: error names the reason");
    }
    diag_response($res, $ng) unless $ok;
    return $ok;
}

# -------------------------------------------------- a new event, queued ---

my $evt = unique_id('evt');
my $inv = invoice(customer => 'cus_ADA1');
my $created = time - 5;
my $body = make_event(type => 'invoice.paid', id => $evt, object => $inv,
                      created => $created);
my $res = post_event($URL, $body, secret => $SECRET);
expect($res, 200, { received => 1 }, 'new event');
like($res->{headers}{'content-type'} // '', qr{^application/json},
     'Content-Type application/json');

my @r = records_for($evt);
is(scalar @r, 1, 'exactly one queue entry');
my $rec = $r[0] // {};
is($rec->{v}, 1, 'record v 1');
is($rec->{id}, $evt, 'record id');
is($rec->{type}, 'invoice.paid', 'record type');
is($rec->{action}, 'renewal', 'subscription_cycle, attempt 1 -> renewal');
is($rec->{created}, $created, 'record created = event created');
is($rec->{livemode}, 0, 'record livemode false');
is_deeply($rec->{object}, { type => 'invoice', id => $inv->{id} }, 'record object');
is($rec->{customer}{id}, 'cus_ADA1', 'record customer id');
is($rec->{customer}{email}, 'ada@example.org', 'record customer email');
is($rec->{amount}, 24900, 'record amount');
is($rec->{currency}, 'usd', 'record currency');
is($rec->{subscription}, 'sub_1', 'record subscription (basil parent)');
diag(explain($rec)) unless $rec->{action} && $rec->{action} eq 'renewal';

my $seen = $redis->key("seen:$evt");
is($redis->cmd('EXISTS', $seen), 1, "$seen set");
my $ttl = $redis->cmd('TTL', $seen);
ok($ttl > $TTL - 60 && $ttl <= $TTL, "seen TTL ~ dedup_ttl 2d (got $ttl)");

my $cj = $redis->cmd('HGET', $redis->key('customers'), 'cus_ADA1');
ok(defined $cj, 'customers hash has cus_ADA1');
my $c = eval { json_decode($cj // '') } || {};
is($c->{email}, 'ada@example.org', 'customer email remembered');
is($c->{name}, 'Ada Lovelace', 'customer name remembered');

# ------------------------------------------------------------ duplicate ---

my $qlen = $redis->queue_len;
$res = post_event($URL, $body, secret => $SECRET);   # re-signed, new t
expect($res, 200, { received => 1, duplicate => 1 }, 'same event again');
is($redis->queue_len, $qlen, 'duplicate not queued');
is(scalar(records_for($evt)), 1, 'still one entry');

# ---------------------------------------------------------- rejections ---

sub rejected {
    my ($name, $path, $b, $want, %o) = @_;
    my $before = $redis->queue_len;
    my $id = eval { json_decode($b)->{id} };
    my $r = post_event($ng->url($path), $b, %o);
    expect($r, 400, $want, $name);
    like($r->{headers}{'content-type'} // '', qr{^application/json},
         "$name: JSON error");
    is($redis->queue_len, $before, "$name: nothing queued");
    is($redis->cmd('EXISTS', $redis->key("seen:$id")), 0,
       "$name: not marked seen") if defined $id;
}

my $b2 = make_event(type => 'invoice.paid', object => invoice());
(my $tampered = $b2) =~ s/24900/24901/;
my $t = int time;
rejected('tampered body', '/hook?case=tampered', $tampered, qr/signature/i,
         signature => sign_header($b2, $SECRET, $t));
rejected('wrong secret', '/hook?case=wrongsecret', $b2, qr/signature/i,
         secret => 'whsec_wrong');
rejected('stale timestamp', '/hook?case=stale', $b2, qr/timestamp|tolerance/i,
         secret => $SECRET, t => time - 400);
rejected('future timestamp', '/hook?case=future', $b2,
         qr/timestamp|tolerance/i, secret => $SECRET, t => time + 400);
rejected('missing header', '/hook?case=missing', $b2, qr/Stripe-Signature/,
         no_signature => 1);
rejected('malformed header', '/hook?case=malformed', $b2, qr/Stripe-Signature/,
         signature => 'garbage');
rejected('v0 only', '/hook?case=v0', $b2, qr/v1|signature/i,
         signature => "t=$t,v0=" . sign($b2, $SECRET, $t));
rejected('body not JSON', '/hook?case=notjson', "this is {not json",
         qr/JSON/, secret => $SECRET);
rejected('empty body', '/hook?case=empty', '', qr/JSON|body/i,
         secret => $SECRET);
rejected('JSON without id', '/hook?case=noid',
         json_encode({ object => 'event', type => 'invoice.paid',
                       data => { object => invoice() } }),
         qr/\bid\b/, secret => $SECRET);
rejected('JSON without type', '/hook?case=notype',
         json_encode({ id => unique_id('evt'), object => 'event',
                       data => { object => invoice() } }),
         qr/type/, secret => $SECRET);

# within tolerance (either direction) is fine
for my $d (-250, 250) {
    my $b = make_event(type => 'invoice.payment_failed',
                       object => invoice(status => 'open'));
    $res = post_event($URL, $b, secret => $SECRET, t => time + $d);
    expect($res, 200, { received => 1 }, "timestamp now${d}s accepted");
}

# ------------------------------------------------------ method and size ---

for my $m (qw(GET PUT)) {
    $res = http_request($m, $URL);
    is($res->{status}, 405, "$m -> 405") or diag_response($res, $ng);
    like($res->{headers}{allow} // '', qr/^\s*POST\s*$/, "$m: Allow: POST");
}

{
    my $before = $redis->queue_len;
    my $big = make_event(type => 'invoice.paid',
        object => { %{ invoice() }, x_padding => 'x' x (1536 * 1024) });
    $res = post_event($URL, $big, secret => $SECRET);
    is($res->{status}, 413, '1.5 MB body over client_max_body_size -> 413')
        or diag_response($res, $ng);
    is($redis->queue_len, $before, '413: nothing queued');
}

{
    my $mark = $ng->error_log_mark;
    my $id = unique_id('evt');
    my $b = make_event(type => 'checkout.session.completed', id => $id,
        object => {
            id => unique_id('cs'), object => 'checkout.session',
            mode => 'payment', payment_status => 'paid', status => 'complete',
            customer => 'cus_BIG', amount_total => 1900, currency => 'usd',
            customer_details => { email => 'big@example.org', name => 'Big' },
            x_padding => join('', map { sprintf "%07d,", $_ } 1 .. 39000),
        });
    ok(length $b > 300_000, 'a ' . int(length($b) / 1024) . ' KB event');
    $res = post_event($URL, $b, secret => $SECRET);
    expect($res, 200, { received => 1 }, 'large event (body in a temp file)');
    like($ng->error_log_since($mark), qr/buffered to a temporary file/,
         'nginx did buffer it to a file');
    my @big = records_for($id);
    is(scalar @big, 1, 'large event queued');
    is($big[0]{action}, 'purchase', 'checkout payment paid -> purchase');
    is($big[0]{customer}{email}, 'big@example.org',
       'email from customer_details');
    ok((grep { $_ eq 'line_items' } @{ $big[0]{enrich} || [] }),
       'enrich line_items for a Checkout Session');
}

# ------------------------------------- keep-alive, pipelining, chunked ---

{
    my @ids = map { unique_id('evt') } 1 .. 3;
    my $data = join '', map {
        raw_post('/hook', make_event(type => 'invoice.payment_failed', id => $_,
                 object => invoice(status => 'open')),
                 secret => $SECRET, keepalive => $_ ne $ids[-1])
    } @ids;
    my @res = raw_http(port => $ng->port, data => $data, responses => 3);
    is(scalar @res, 3, 'three pipelined requests on one connection: 3 answers');
    is_deeply([map { $_->{status} } @res], [200, 200, 200], 'all 200')
        or diag(explain(\@res));
    is_deeply([map { scalar records_for($_) } @ids], [1, 1, 1], 'all queued');
    $res = post_event($URL, make_event(type => 'invoice.payment_failed',
        id => $ids[1], object => invoice(status => 'open')), secret => $SECRET);
    is($res->{json}{duplicate}, 1, 'and known as seen');

    my $cid = unique_id('evt');
    my $cb = make_event(type => 'invoice.payment_failed', id => $cid,
        object => { %{ invoice(status => 'open') }, x_pad => 'y' x 20000 });
    my ($cr) = raw_http(port => $ng->port,
        data => raw_post('/hook', $cb, secret => $SECRET, chunked => 1));
    is($cr && $cr->{status}, 200, 'chunked request body: 200')
        or diag(explain($cr));
    is(scalar(records_for($cid)), 1, 'chunked: queued');
}

# --------------------------------------- escaping in record and map ---

{
    my $id = "evt_q\"u{o}te\\s" . unique_id('');
    my $cus = 'cus_ESC{1}';
    my $b = make_event(type => 'invoice.payment_failed', id => $id,
        object => { %{ invoice(status => 'open', customer => $cus,
                                email => 'o"brien+x@example.org') },
                    customer_name => "Zo\x{eb} \"Q\" \\ O'Brien" });
    $res = post_event($URL, $b, secret => $SECRET);
    if ($res->{status} == 200) {
        my $raw = $redis->queue_raw;
        my @recs = grep { defined } map { eval { json_decode($_) } } @$raw;
        is(scalar @recs, scalar @$raw, 'every queue entry is valid JSON');
        my $id_bytes = $id;
        utf8::encode($id_bytes);
        my @mine = grep { my $x = $_->{id}; utf8::encode($x); $x eq $id_bytes } @recs;
        is(scalar @mine, 1, 'odd event id round-trips through the record');
        is($mine[0]{customer}{email}, 'o"brien+x@example.org',
           'quote in email round-trips');
        my $cj = $redis->cmd('HGET', $redis->key('customers'), $cus);
        my $c = eval { json_decode($cj // '') };
        ok($c, 'customer map entry is valid JSON') or diag($cj);
        is($c && $c->{name}, "Zo\x{eb} \"Q\" \\ O'Brien", 'name round-trips');
        my $idk = $redis->key("seen:") . $id_bytes;
        is($redis->cmd('EXISTS', $idk), 1, 'seen key uses the raw id');
    } else {
        is($res->{status}, 400, 'odd id refused (400) rather than mangled')
            or diag_response($res, $ng);
    }
}

# -------------------------------------------------------- unknown type ---

{
    my $before = $redis->queue_len;
    my $id = unique_id('evt');
    $res = post_event($URL, make_event(type => 'customer.source.created',
        id => $id, object => { id => 'card_1', object => 'card',
                               customer => 'cus_X' }), secret => $SECRET);
    is($res->{status}, 200, 'unknown type: 200') or diag_response($res, $ng);
    is($res->{json}{received}, 1, 'unknown type: received');
    like($res->{json}{ignored} // '', qr/\S/, 'unknown type: ignored, with why');
    ok(!exists $res->{json}{duplicate}, 'unknown type: not duplicate');
    is($redis->queue_len, $before, 'unknown type: not queued');
}

# ------------------------------------------------------ several secrets ---

for my $s (@FILE_SECRETS, $THIRD) {
    my $id = unique_id('evt');
    $res = post_event($ng->url('/hook-multi'),
        make_event(type => 'invoice.payment_failed', id => $id,
                   object => invoice(status => 'open')), secret => $s);
    expect($res, 200, { received => 1 }, "signed with " . substr($s, 0, 15));
    is(scalar(records_for($id)), 1, 'queued');
}
$res = post_event($ng->url('/hook-multi'),
    make_event(type => 'invoice.payment_failed', object => invoice()),
    secret => $SECRET);
expect($res, 400, qr/signature/i, 'a secret of another location');
{
    # during a secret roll Stripe sends one v1 per secret
    my $id = unique_id('evt');
    my $b = make_event(type => 'invoice.payment_failed', id => $id,
                       object => invoice(status => 'open'));
    $res = post_event($ng->url('/hook-multi'), $b,
                      secret => ['whsec_old_rolled', $FILE_SECRETS[1]]);
    expect($res, 200, { received => 1 }, 'one of two v1 matches');
}

for my $s ('whsec_crlf_one_DDDD', 'whsec_crlf_two_EEEE') {
    $res = post_event($ng->url('/hook-crlf'),
        make_event(type => 'invoice.payment_failed',
                   object => invoice(status => 'open')), secret => $s);
    expect($res, 200, { received => 1 }, "CRLF secret file: $s");
}

# ------------------------------------------------ SPEC 7 test vector ---

{
    my $payload = slurp("$FindBin::Bin/fixtures/stripe/signature-vector-payload.json");
    my $v1 = '2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7';
    is(length $payload, 484, 'vector payload: 484 bytes');
    is(sign($payload, 'webhook_secret', 1533204620), $v1,
       'harness sign() reproduces the vector');
    $res = post_event($ng->url('/hook-vector'), $payload,
                      signature => "t=1533204620,v1=$v1");
    is($res->{status}, 200, 'the vector verifies in nginx (tolerance 3650d)')
        or diag_response($res, $ng);
    ok($res->{json}{received}, 'received');
}

# ------------------------------------------------------------ livemode ---

{
    my $before = $redis->queue_len;
    $res = post_event($ng->url('/hook-live'),
        make_event(type => 'invoice.payment_failed', livemode => 0,
                   object => invoice(status => 'open')), secret => $SECRET);
    is($res->{status}, 200, 'livemode live, test event: 200')
        or diag_response($res, $ng);
    like($res->{json}{ignored} // '', qr/live|test|mode/i,
         'test event ignored, says why');
    is($redis->queue_len, $before, 'test event not queued');

    my $id = unique_id('evt');
    $res = post_event($ng->url('/hook-live'),
        make_event(type => 'invoice.payment_failed', livemode => 1, id => $id,
                   object => invoice(status => 'open')), secret => $SECRET);
    expect($res, 200, { received => 1 }, 'livemode live, live event');
    my @l = records_for($id);
    is($l[0]{livemode}, 1, 'record livemode true');
}

# ------------------------------------------------- fact-level duplicate ---

{
    my $in = invoice();
    my ($e1, $e2) = (unique_id('evt'), unique_id('evt'));
    $res = post_event($URL, make_event(type => 'invoice.paid', id => $e1,
                                       object => $in), secret => $SECRET);
    expect($res, 200, { received => 1 }, 'invoice.paid');
    $res = post_event($URL, make_event(type => 'invoice.payment_succeeded',
                       id => $e2, object => $in), secret => $SECRET);
    expect($res, 200, { received => 1, duplicate => 1 },
           'invoice.payment_succeeded, same invoice: same fact');
    is(scalar(records_for($e1)), 1, 'first queued');
    is(scalar(records_for($e2)), 0, 'second not queued');

    # payment_failed is once per (invoice, attempt)
    my $fi = invoice(status => 'open');
    my @ids = map { unique_id('evt') } 1 .. 3;
    $res = post_event($URL, make_event(type => 'invoice.payment_failed',
        id => $ids[0], object => { %$fi, attempt_count => 1 }), secret => $SECRET);
    expect($res, 200, { received => 1 }, 'payment_failed attempt 1');
    $res = post_event($URL, make_event(type => 'invoice.payment_failed',
        id => $ids[1], object => { %$fi, attempt_count => 2 }), secret => $SECRET);
    expect($res, 200, { received => 1 }, 'payment_failed attempt 2: new fact');
    $res = post_event($URL, make_event(type => 'invoice.payment_failed',
        id => $ids[2], object => { %$fi, attempt_count => 2 }), secret => $SECRET);
    expect($res, 200, { received => 1, duplicate => 1 },
           'payment_failed attempt 2 again, other event id: duplicate');
    my @pf = map { scalar records_for($_) } @ids;
    is_deeply(\@pf, [1, 1, 0], 'queued: attempt 1, attempt 2 once');
    my ($pf2) = records_for($ids[1]);
    is($pf2->{action}, 'payment_failed', 'action payment_failed');
    is($pf2->{attempt_count}, 2, 'record attempt_count');
}

# -------------------------------------------------------------- prefix ---

{
    my $id = unique_id('evt');
    my $before = $redis->queue_len;
    $res = post_event($ng->url('/hook-acme'),
        make_event(type => 'invoice.paid', id => $id, object => invoice()),
        secret => $SECRET);
    expect($res, 200, { received => 1 }, 'prefix acme');
    is(scalar(records_for($id, prefix => 'acme')), 1, '{acme}:queue has it');
    is($redis->cmd('EXISTS', '{acme}:seen:' . $id), 1, '{acme}:seen:<id> set');
    is($redis->queue_len, $before, '{stripe_sync}:queue untouched');
    is($redis->cmd('EXISTS', $redis->key("seen:$id")), 0,
       '{stripe_sync}:seen:<id> not set');
}

# ----------------------------------------------------- access log vars ---

{
    my $id = unique_id('evt');
    my $b = make_event(type => 'invoice.paid', id => $id, object => invoice());
    post_event($ng->url('/hook?log=q'), $b, secret => $SECRET);
    post_event($ng->url('/hook?log=d'), $b, secret => $SECRET);
    my $ign = unique_id('evt');
    post_event($ng->url('/hook?log=i'), make_event(type => 'customer.source.created',
        id => $ign, object => { id => 'card_2', object => 'card' }),
        secret => $SECRET);
    post_event($ng->url('/hook?log=r'), $b, secret => 'whsec_wrong');

    my %line;
    wait_until(sub {
        %line = ();
        for (split /\n/, $ng->access_log('hooks.log')) {
            $line{$1} = $_ if /\?log=(\w)$/;
        }
        return keys %line == 4;
    }, tmo(5));
    is($line{q}, "queued|$id|invoice.paid|200|/hook?log=q", 'log: queued');
    is($line{d}, "duplicate|$id|invoice.paid|200|/hook?log=d", 'log: duplicate');
    is($line{i}, "ignored|$ign|customer.source.created|200|/hook?log=i",
       'log: ignored');
    like($line{r} // '', qr{^rejected\|[^|]*\|[^|]*\|400\|/hook\?log=r$},
         'log: rejected');
}

my @alerts = $ng->alerts;
ok(!@alerts, 'no [alert]/[crit]/[emerg] in error.log') or diag(join "\n", @alerts);

finish();
