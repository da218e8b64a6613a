package StripeSync::Fake;

# Fake HTTP/1.1 APIs for the consumer's tests: Kit v4, ActiveCampaign v3,
# Klaviyo (revision 2026-07-15), the Stripe API, and a generic signed
# webhook receiver. Core Perl only.
#
#   use StripeSync::Fake;
#   my $kit = StripeSync::Fake->new(api => 'kit',
#       seed => { sequences => ['Onboarding'], tags => ['Buyer'] });
#   $kit->base        # http://127.0.0.1:PORT/v4   (what provider.api_base takes)
#   $kit->url         # http://127.0.0.1:PORT
#   $kit->key         # the API key it accepts; ->oauth (Kit), ->secret (webhook)
#   ... run the consumer ...
#   my @r = $kit->requests(method => 'POST', route => '/purchases');
#   $r[0]{json}{purchase}{transaction_id}
#   $kit->no_violations;               # a test: every request fit the spec
#   my $st = $kit->state;              # the in-memory account, as JSON
#
# Each fake is a forked child (StripeSync::Test::spawn_sub: own process
# group, killed with the test), one single-threaded select() loop: keep-alive,
# pipelining, Content-Length and chunked bodies, "Expect: 100-continue".
#
# Constructor options:
#   api       kit | activecampaign | klaviyo | stripe | webhook   (required)
#   key       the credential it accepts (defaults below, ->key)
#   oauth     Kit: the OAuth token (Authorization: Bearer), ->oauth
#   secret    webhook: the signing secret; tolerance => 300 (s)
#   prefix    path prefix of the API (kit /v4, activecampaign /api/3,
#             klaviyo /api, stripe and webhook ''); ->route is the path
#             without it, and schema paths are found from the route
#   seed      initial data, per flavour (see each _seed_*)
#   schema    0 to skip the OpenAPI checks (default on for kit,
#             activecampaign, klaviyo; needs t/fixtures/api-specs)
#   page_size_cap  a cap on every listing's page size, whatever the client
#             asks (forces pagination); default page sizes are the real
#             APIs' (Kit 500 max 1000, ActiveCampaign 20 max 100, Klaviyo
#             10, Stripe 10 max 100)
#   rate_limit { max => N, per => S, retry_after => s|undef }: answer 429
#             when more than N requests came in the last S seconds (the
#             fake's own limit; a test can also script 429s with faults)
#   keepalive 0: close each connection after its response
#   status    webhook: the status to answer valid deliveries (200)
#   revision  klaviyo: the revision header it requires ('2026-07-15')
#
# The log: every request (not the control ones) is one JSON line in
# ->log_file, written when its response is decided:
#   { seq, t (arrival, unix ms), conn, method, path, route, query,
#     params {k => v or [v...]}, headers {lowercase => v}, body (bytes),
#     json (decoded body or null), status, response (first 4 KB),
#     fault (what was injected, or null), violations [..], auth (1/0),
#     dropped (1: the client left while held), done_t (unix ms),
#     sig_valid / sig_error (webhook) }
#
# Reading it:
#   ->requests(%filter)  the entries in arrival order; filters: method,
#                        route / path (exact string or qr//), since (a seq
#                        from ->mark), status, all => 1 (include dropped)
#   ->count(%filter), ->mark, ->wait_requests($n, %filter, timeout => s)
#   ->violations         entries with schema/shape violations
#   ->no_violations($name)   ok() with a diag of each violation
#
# Scripting (POST /__control, from the test process):
#   ->fault(%f)   adds a fault; the first matching fault with uses left
#                 applies. Match: method, route / path (string or qr//:
#                 sent as a regex), body_like (regex on the body), skip =>
#                 K (let K matches through first). Effect:
#                   times => N (default 1; -1 forever)
#                   status => S, body => bytes | data, headers => {..},
#                   retry_after => secs (adds Retry-After)
#                   hang => secs: hold the request; apply => 'before'
#                     (default: processed when the hold ends, only if the
#                     client is still there; a dropped one changes nothing)
#                     or 'after' (processed at once, the answer held)
#                   kind => 'nonjson' (200 text/html), 'truncated' (a
#                     Content-Length longer than what is sent, then close),
#                   'huge' (200 with a 5 MB JSON body), 'empty' (200, no
#                     body), 'close' (hang up without answering)
#                   after => 1: process the request normally first (the
#                     state changes), then answer the fault instead
#   ->clear_faults, ->seed(%data) (more data), ->set(k => v) (options:
#   rate_limit, force_page_size, status, keepalive, accept_invalid),
#   ->state (GET /__state: the flavour's data), ->faults (what is left of
#   them), ->held (requests held by a hang right now: [{seq, t, method,
#   route}])
#
# The flavours (routes are after the prefix; everything else is 404):
#   kit       GET /account; GET /tags, /sequences, /forms (cursor pages:
#             per_page, after; {tags:[..], pagination:{has_next_page,
#             end_cursor,..}}); POST /tags {name} (201 new, 200 existing);
#             GET /subscribers?email_address=&status=; POST /subscribers
#             (201 new, 200 existing; fields merged); GET /subscribers/{id}
#             (/tags); POST /tags|sequences|forms/{id}/subscribers
#             {email_address} (201, 200 already; 404 unknown id; 422 no such
#             subscriber, inactive sequence); DELETE /tags/{id}/subscribers/
#             {sid} (204, 404); DELETE /tags/{id}/subscribers {email};
#             POST /purchases (OAuth only: 401 with X-Kit-Api-Key; every
#             POST is a new record); GET /purchases. Auth X-Kit-Api-Key =
#             key or Authorization: Bearer oauth, else 401 {"errors":[..]}.
#             Seed: tags, sequences ({name, active => 0}), forms,
#             subscribers. State: subscribers{id}, tags, taggings{tag}{sub},
#             sequences, sequence_subs, forms, form_subs, purchases.
#   activecampaign  POST /contact/sync (201/200); GET /contacts?email=,
#             /contacts/{id}, /contacts/{id}/contactTags|contactLists|
#             contactAutomations; GET /tags?search= (contains-match, limit/
#             offset); POST /tags (422 duplicate name); POST /contactTags
#             (201, 200 existing); DELETE /contactTags/{id} (200 {}, 404
#             {"message"}); GET /automations; POST /contactAutomations (a new
#             record every time; 422 inactive); GET /lists?filters[name]=;
#             POST /contactLists; GET /fields; GET|POST /connections (422
#             duplicate service+externalid); GET|POST /ecomCustomers (422
#             duplicate); GET|POST /ecomOrders (422 duplicate externalid);
#             GET /users/me. Auth Api-Token (401 none, 403 wrong). Error
#             shapes {"errors":[{title,detail,code,source}]}, {"message"},
#             {} (unknown route, 5xx). Seed: tags, automations ({name,
#             status}), lists, fields, contacts, connections.
#   klaviyo   POST /profile-import (201/200); POST /profiles (409
#             duplicate); GET /profiles?filter=equals(email,".."); POST
#             /events (202, no body; unique_id dedupes per profile + metric:
#             state events[] marks duplicate => 1); GET /lists?filter=
#             equals(name,"..") | any(name,[..]) (page[cursor], links.next);
#             POST|DELETE /lists/{id}/relationships/profiles (204); GET
#             /accounts. Needs Authorization: Klaviyo-API-Key <key> (401),
#             revision: 2026-07-15 (else 400 + violation), Content-Type
#             application/vnd.api+json on bodies. Seed: lists, profiles.
#             State: profiles{id}, events[], metrics, lists, list_members.
#   stripe    GET only. /v1/<coll>/{id} and list /v1/<coll> for customers,
#             subscriptions, charges, invoices, events, checkout/sessions,
#             payment_intents, products, prices, refunds (404
#             resource_missing); GET /v1/checkout/sessions/{id}/line_items.
#             Lists: {object:"list", url, has_more, data}, newest first
#             (created desc), limit 1..100 (else 400), starting_after /
#             ending_before (404 if unknown), created / created[gt|gte|lt|
#             lte], customer, subscription, status (subscriptions: default
#             leaves out canceled; status=all), events: type (wildcard
#             "invoice.*"), types[] , delivery_success=false (seed an event
#             with _delivery_success => 0; "_" members are never shown).
#             Auth Bearer or Basic <key>: else 401 {"error":{..}}. Seed:
#             customers, subscriptions, checkout_sessions, charges,
#             invoices, events, ..., line_items => {cs_id => [items]}; a
#             seed with a known id replaces the object.
#   webhook   POST anywhere: verifies X-Stripe-Sync-Signature (t=,v1= HMAC-
#             SHA256 of "<t>.<body>" with the secret, |now - t| <= tolerance)
#             and logs sig_valid / sig_error; invalid -> 400 unless
#             accept_invalid; valid -> status (200) {"ok":true}.
#
# StripeSync::Fake::Stack (below): Redis + nginx with the module + helpers
# to run the consumer against fakes and build Stripe objects for events.
#
# Schema checks (t/lib/StripeSync/Schema.pm): the route must exist in the
# spec for the method (else 404 + violation); the body must fit the
# operation's request schema (else 422 Kit/ActiveCampaign, 400 Klaviyo,
# + violation). Deviations from the spec files, each the real API's
# behaviour: Kit's subscriber "fields" is free-form (the spec's example
# account's fields are marked required); ActiveCampaign (its README's
# known defects) orderProducts is an array, externalid / externalcheckoutid
# are alternatives and abandonedDate goes with externalcheckoutid only, and
# ids/numbers may be strings or numbers either way; Klaviyo refuses
# unknown members (JSON:API) and wants Content-Type application/vnd.api+json.

use strict;
use warnings;

use Digest::SHA qw(hmac_sha256_hex);
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX qw(strftime);
use Test::More ();
use Time::HiRes qw(time sleep);

use StripeSync::Test ();
use StripeSync::Schema;

my %FLAVOUR = (
    kit => {
        prefix => '/v4', spec => 'kit-v4-openapi.imjohnbo-docs.json',
        spec_prefix => '/v4', key => 'kit_test_api_key_0123456789',
        oauth => 'kit_test_oauth_token_0123456789', invalid_status => 422,
        page_size => 500, max_page_size => 1000,
    },
    activecampaign => {
        prefix => '/api/3', spec => 'activecampaign-v3.api-evangelist.json',
        spec_prefix => '', key => 'ac_test_api_token_0123456789',
        invalid_status => 422, lenient_numbers => 1,
        page_size => 20, max_page_size => 100,
    },
    klaviyo => {
        prefix => '/api', spec => 'klaviyo-openapi-stable.json',
        spec_prefix => '/api', key => 'pk_test_klaviyo_0123456789',
        invalid_status => 400, strict_properties => 1,
        revision => '2026-07-15', page_size => 10, max_page_size => 100,
    },
    stripe => {
        prefix => '', key => 'sk_test_fake_0123456789',
        page_size => 10, max_page_size => 100,
    },
    webhook => {
        prefix => '', secret => 'whsec_test_fake_webhook', tolerance => 300,
        status => 200,
    },
);

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref->allow_blessed
                       ->convert_blessed;
my $JSON_IN = JSON::PP->new->utf8->allow_nonref;
my $JSON_LOG = JSON::PP->new->utf8->allow_nonref->boolean_values(0, 1);

sub _true  { JSON::PP::true }
sub _false { JSON::PP::false }

# ====================================================== test-side API ===

sub new {
    my ($class, %o) = @_;
    my $api = $o{api} or die "StripeSync::Fake: no api\n";
    my $fl = $FLAVOUR{$api} or die "StripeSync::Fake: unknown api '$api'\n";
    my $self = bless { %$fl, %o }, $class;
    $self->{prefix} //= '';
    $self->{prefix} =~ s{/+$}{};
    $self->{keepalive} //= 1;
    $self->{force_page_size} //= $o{page_size_cap};
    $self->{dir} //= StripeSync::Test::temp_dir("fake-$api");
    $self->{log_file} = "$self->{dir}/requests.jsonl";
    StripeSync::Test::spew($self->{log_file}, '');

    if ($fl->{spec} && ($o{schema} // 1)) {
        my $file = StripeSync::Test::repo_root() . "/t/fixtures/api-specs/$fl->{spec}";
        if (-f $file) {
            $self->{schema_obj} = StripeSync::Schema->load($file,
                prefix => $fl->{spec_prefix});
            $self->_patch_schema;
        } else {
            Test::More::diag("fake $api: $file missing: no schema checks");
        }
    }

    $self->{state} = {};
    $self->{faults} = [];
    my $init = "_init_$api";
    $self->$init;
    $self->_seed($o{seed}) if $o{seed};

    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $o{port} // 0, Proto => 'tcp', Listen => 128,
        ReuseAddr => 1) or die "fake $api: listen: $!\n";
    $self->{port} = $listen->sockport;

    $self->{proc} = StripeSync::Test::spawn_sub(name => "fake-$api",
        dir => $self->{dir}, code => sub { $self->_serve($listen) });
    close $listen;

    my $ok = StripeSync::Test::wait_until(sub {
        my $r = StripeSync::Test::http_get($self->url('/__ping'), timeout => 2);
        $r->{status} == 200;
    }, StripeSync::Test::tmo(10));
    die "fake $api did not start:\n" . $self->{proc}->output unless $ok;
    return $self;
}

sub api      { $_[0]{api} }
sub port     { $_[0]{port} }
sub key      { $_[0]{key} }
sub oauth    { $_[0]{oauth} }
sub secret   { $_[0]{secret} }
sub prefix   { $_[0]{prefix} }
sub dir      { $_[0]{dir} }
sub log_file { $_[0]{log_file} }
sub proc     { $_[0]{proc} }
sub output   { $_[0]{proc}->output }
sub url      { "http://127.0.0.1:$_[0]{port}" . ($_[1] // '') }
sub base     { $_[0]->url($_[0]{prefix}) }
sub alive    { $_[0]{proc}->alive }
sub stop     { $_[0]{proc}->kill }

sub _control {
    my ($self, $data) = @_;
    my $r = StripeSync::Test::http_request('POST', $self->url('/__control'),
        headers => { 'Content-Type' => 'application/json' },
        content => $JSON->encode($data), timeout => 5);
    die "fake $self->{api}: control failed: $r->{status} $r->{content}\n"
        unless $r->{status} == 200;
    return $r->{json};
}

sub _rx {
    my ($v) = @_;
    return $v unless ref $v eq 'Regexp';
    return { re => "$v" };
}

sub fault {
    my ($self, %f) = @_;
    for my $k (qw(route path body_like)) {
        $f{$k} = _rx($f{$k}) if ref $f{$k} eq 'Regexp';
    }
    $f{body_like} = { re => $f{body_like} } if defined $f{body_like} && !ref $f{body_like};
    return $self->_control({ fault => \%f });
}

sub clear_faults { $_[0]->_control({ clear_faults => 1 }) }
sub seed  { my ($s, %d) = @_; $s->_control({ seed => \%d }) }
sub set   { my ($s, %d) = @_; $s->_control({ set => \%d }) }
sub faults { $_[0]->_control({ faults => 1 })->{faults} }

# The requests being held by a hang fault now: [{seq, t, method, route}].
sub held {
    my ($self) = @_;
    my $r = StripeSync::Test::http_get($self->url('/__held'), timeout => 5);
    die "fake $self->{api}: held: $r->{status}\n" unless $r->{status} == 200;
    return $r->{json};
}

sub state {
    my ($self) = @_;
    my $r = StripeSync::Test::http_get($self->url('/__state'), timeout => 5);
    die "fake $self->{api}: state: $r->{status}\n" unless $r->{status} == 200;
    return $r->{json};
}

sub _match {
    my ($want, $got) = @_;
    return 1 unless defined $want;
    return 0 unless defined $got;
    return $got =~ $want if ref $want eq 'Regexp';
    return $got eq $want;
}

# The log entries, arrival order.
sub requests {
    my ($self, %f) = @_;
    my @all;
    open my $fh, '<:raw', $self->{log_file} or return ();
    while (my $l = <$fh>) {
        next unless $l =~ /\n\z/;
        my $e = eval { $JSON_LOG->decode($l) } or next;
        push @all, $e;
    }
    close $fh;
    @all = sort { $a->{seq} <=> $b->{seq} } @all;
    return grep {
        ($f{all} || !$_->{dropped})
        && _match($f{method}, $_->{method})
        && _match($f{route}, $_->{route})
        && _match($f{path}, $_->{path})
        && _match($f{status}, $_->{status})
        && (!defined $f{since} || $_->{seq} > $f{since})
        && (!$f{violations} || @{ $_->{violations} || [] })
    } @all;
}

sub count { scalar(my @r = $_[0]->requests(@_[1 .. $#_])) }

# The highest seq logged so far (requests(since => $mark) are newer).
sub mark {
    my ($self) = @_;
    my @r = $self->requests(all => 1);
    return @r ? $r[-1]{seq} : 0;
}

sub wait_requests {
    my ($self, $n, %f) = @_;
    my $timeout = delete $f{timeout} // StripeSync::Test::tmo(10);
    my @r;
    StripeSync::Test::wait_until(sub {
        @r = $self->requests(%f);
        @r >= $n;
    }, $timeout, 0.05);
    return @r;
}

sub violations { $_[0]->requests(all => 1, violations => 1) }

sub no_violations {
    my ($self, $name) = @_;
    my @v = $self->violations;
    Test::More::ok(!@v, $name // "$self->{api}: every request fit the API spec")
        or Test::More::diag(join "\n", map {
            "  #$_->{seq} $_->{method} $_->{path}: "
            . join('; ', @{ $_->{violations} }) . "\n    body: "
            . substr($_->{body} // '', 0, 600)
        } @v);
    return !@v;
}

# "METHOD route" of each request (arrival order), for is_deeply.
sub calls {
    my ($self, %f) = @_;
    return [ map { "$_->{method} $_->{route}" } $self->requests(%f) ];
}

# ============================================================ schema ===

sub _patch_schema {
    my ($self) = @_;
    my $s = $self->{schema_obj};
    if ($self->{api} eq 'kit') {
        for my $m (['post', '/v4/subscribers'], ['put', '/v4/subscribers/{id}']) {
            next unless eval { $s->doc->{paths}{ $m->[1] }{ $m->[0] }{requestBody} };
            $s->patch(@$m, sub {
                my ($sc) = @_;
                $sc->{properties}{fields} = { type => 'object', nullable => 1,
                    additionalProperties => { type => 'string', nullable => 1 } }
                    if $sc->{properties}{fields};
                return $sc;
            });
        }
    } elsif ($self->{api} eq 'activecampaign') {
        # in ActiveCampaign's API reference ("Retrieve a contact's tags"),
        # missing from the generated spec
        $s->add_operation('get', '/contacts/{id}/contactTags');
        for my $m (['post', '/ecomOrders'], ['put', '/ecomOrders/{id}']) {
            next unless eval { $s->doc->{paths}{ $m->[1] }{ $m->[0] }{requestBody} };
            $s->patch(@$m, sub {
                my ($sc) = @_;
                my $o = $sc->{properties}{ecomOrder} or return $sc;
                my $p = $o->{properties}{orderProducts};
                $o->{properties}{orderProducts} = { type => 'array', items => $p }
                    if $p && ($p->{type} // '') ne 'array';
                $o->{required} = [ grep {
                    !/^(externalid|externalcheckoutid|abandonedDate)$/
                } @{ $o->{required} || [] } ];
                $o->{required} = [] if $m->[0] eq 'put';
                return $sc;
            });
        }
    }
}

# ============================================================ server ===

sub _now_ms { sprintf '%.3f', time * 1000 }

sub _iso {
    my ($t) = @_;
    return strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($t // time));
}

sub _serve {
    my ($self, $listen) = @_;
    $SIG{PIPE} = 'IGNORE';
    $listen->blocking(0);
    open my $log, '>>:raw', $self->{log_file} or die "log: $!";
    $self->{log} = $log;
    $self->{seq} = 0;
    $self->{conn_seq} = 0;
    my %c;
    while (1) {
        my $now = time;
        my $timeout = 0.25;
        for my $c (values %c) {
            next unless $c->{hold};
            my $d = $c->{hold}{due} - $now;
            $timeout = $d if $d < $timeout;
        }
        $timeout = 0 if $timeout < 0;
        my ($rin, $win) = ('', '');
        vec($rin, fileno $listen, 1) = 1;
        for my $c (values %c) {
            vec($rin, $c->{fd}, 1) = 1 unless $c->{eof};
            vec($win, $c->{fd}, 1) = 1 if length $c->{wbuf};
        }
        my $n = select(my $rout = $rin, my $wout = $win, undef, $timeout);
        if ($n && $n > 0) {
            if (vec($rout, fileno $listen, 1)) {
                while (my $s = $listen->accept) {
                    $s->blocking(0);
                    binmode $s;
                    my $fd = fileno $s;
                    $c{$fd} = { sock => $s, fd => $fd, rbuf => '', wbuf => '',
                                id => ++$self->{conn_seq} };
                }
            }
            for my $c (values %c) {
                if (vec($rout, $c->{fd}, 1)) {
                    my $r = sysread $c->{sock}, $c->{rbuf}, 65536, length $c->{rbuf};
                    if (!$r && !($!{EAGAIN} || $!{EWOULDBLOCK})) {
                        $c->{eof} = 1;
                    }
                }
                if (length $c->{wbuf} && vec($wout, $c->{fd}, 1)) {
                    my $w = syswrite $c->{sock}, $c->{wbuf};
                    if (defined $w) {
                        substr($c->{wbuf}, 0, $w, '');
                    } elsif (!($!{EAGAIN} || $!{EWOULDBLOCK})) {
                        $c->{wbuf} = '';
                        $c->{eof} = $c->{dead} = 1;
                    }
                }
            }
        }
        for my $c (values %c) {
            if ($c->{hold}) {
                if ($c->{eof} && $c->{hold}{apply} ne 'after') {
                    $self->_drop_held($c);
                } elsif (time >= $c->{hold}{due}) {
                    $self->_release($c);
                }
            }
            while (!$c->{hold} && !$c->{closing} && !$c->{dead}) {
                my $req = $self->_parse($c) or last;
                $self->_handle($c, $req);
            }
            if (!$c->{hold} && !length $c->{wbuf}
                && ($c->{closing} || $c->{eof} || $c->{dead})) {
                close $c->{sock};
                delete $c{ $c->{fd} };
            }
        }
    }
}

sub _unescape {
    my ($s) = @_;
    $s =~ tr/+/ /;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return $s;
}

sub _parse_query {
    my ($q) = @_;
    my %p;
    for my $pair (split /&/, $q // '') {
        next unless length $pair;
        my ($k, $v) = split /=/, $pair, 2;
        $k = _unescape($k);
        $v = _unescape($v // '');
        if (exists $p{$k}) {
            $p{$k} = [ $p{$k} ] unless ref $p{$k};
            push @{ $p{$k} }, $v;
        } else {
            $p{$k} = $v;
        }
    }
    return \%p;
}

# One complete request off the connection's buffer, or undef.
sub _parse {
    my ($self, $c) = @_;
    my $i = index $c->{rbuf}, "\r\n\r\n";
    if ($i < 0) {
        if (length $c->{rbuf} > 65536) {
            $self->_raw_answer($c, 431, 'headers too large');
        }
        return undef;
    }
    my $head = substr $c->{rbuf}, 0, $i;
    my ($line, @hl) = split /\r\n/, $head;
    my ($method, $target, $proto) = ($line // '') =~ m{^([A-Z]+) (\S+) HTTP/(\d\.\d)$};
    if (!$method) {
        $self->_raw_answer($c, 400, "bad request line");
        return undef;
    }
    my %h;
    for my $l (@hl) {
        my ($k, $v) = $l =~ /^([^:]+):\s*(.*?)\s*$/ or next;
        $k = lc $k;
        $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
    }
    my $pos = $i + 4;
    my $body = '';
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        my $p = $pos;
        while (1) {
            my $e = index $c->{rbuf}, "\r\n", $p;
            return $self->_continue($c, \%h) if $e < 0;
            my ($size) = substr($c->{rbuf}, $p, $e - $p) =~ /^([0-9A-Fa-f]+)/;
            if (!defined $size) {
                $self->_raw_answer($c, 400, 'bad chunk');
                return undef;
            }
            $size = hex $size;
            $p = $e + 2;
            if ($size == 0) {
                # trailers, up to an empty line
                while (1) {
                    my $t = index $c->{rbuf}, "\r\n", $p;
                    return undef if $t < 0;
                    my $empty = $t == $p;
                    $p = $t + 2;
                    last if $empty;
                }
                last;
            }
            return $self->_continue($c, \%h) if length($c->{rbuf}) < $p + $size + 2;
            $body .= substr $c->{rbuf}, $p, $size;
            $p += $size + 2;
        }
        substr($c->{rbuf}, 0, $p, '');
    } else {
        my $len = $h{'content-length'} // 0;
        if ($len !~ /^\d+$/) {
            $self->_raw_answer($c, 400, 'bad Content-Length');
            return undef;
        }
        return $self->_continue($c, \%h) if length($c->{rbuf}) < $pos + $len;
        $body = substr $c->{rbuf}, $pos, $len;
        substr($c->{rbuf}, 0, $pos + $len, '');
    }
    delete $c->{continued};
    my ($path, $query) = split /\?/, $target, 2;
    return { method => $method, target => $target, path => $path,
             query => $query // '', params => _parse_query($query),
             headers => \%h, body => $body, t => _now_ms(), proto => $proto,
             conn => $c->{id} };
}

sub _continue {
    my ($self, $c, $h) = @_;
    if (($h->{expect} // '') =~ /100-continue/i && !$c->{continued}) {
        $c->{wbuf} .= "HTTP/1.1 100 Continue\r\n\r\n";
        $c->{continued} = 1;
    }
    return undef;
}

sub _raw_answer {
    my ($self, $c, $status, $msg) = @_;
    $c->{wbuf} .= "HTTP/1.1 $status X\r\nContent-Type: text/plain\r\n"
        . "Content-Length: " . length($msg) . "\r\nConnection: close\r\n\r\n$msg";
    $c->{closing} = 1;
    $c->{rbuf} = '';
}

my %REASON = (100 => 'Continue', 200 => 'OK', 201 => 'Created',
    202 => 'Accepted', 204 => 'No Content', 400 => 'Bad Request',
    401 => 'Unauthorized', 403 => 'Forbidden', 404 => 'Not Found',
    405 => 'Method Not Allowed', 408 => 'Request Timeout',
    409 => 'Conflict', 415 => 'Unsupported Media Type',
    422 => 'Unprocessable Entity', 429 => 'Too Many Requests',
    500 => 'Internal Server Error', 502 => 'Bad Gateway',
    503 => 'Service Unavailable', 504 => 'Gateway Timeout');

# Queues a response: $res = { status, headers, body (bytes or data) }.
sub _respond {
    my ($self, $c, $req, $res) = @_;
    my $kind = $res->{kind} // '';
    if ($kind eq 'close') {
        $c->{wbuf} = '';
        $c->{closing} = 1;
        $c->{rbuf} = '';
        return;
    }
    my $status = $res->{status} // 200;
    my %h = %{ $res->{headers} || {} };
    my $body = $res->{body};
    if (ref $body) {
        $body = $JSON->encode($body);
        $h{'Content-Type'} //= $res->{ctype} // 'application/json; charset=utf-8';
    }
    $body //= '';
    $body = '' if $status == 204;
    $h{'Content-Type'} //= 'application/json; charset=utf-8' if length $body;
    my $close = !$self->{keepalive}
        || ($req->{headers}{connection} // '') =~ /close/i
        || ($req->{proto} eq '1.0'
            && ($req->{headers}{connection} // '') !~ /keep-alive/i);
    my $len = length $body;
    if ($kind eq 'truncated') {
        $body = substr $body, 0, int($len / 2);
        $close = 1;
    }
    $h{'Content-Length'} = $len;
    $h{'Connection'} = $close ? 'close' : 'keep-alive';
    $h{'Date'} = strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime);
    $c->{wbuf} .= "HTTP/1.1 $status " . ($REASON{$status} // 'Status') . "\r\n"
        . join('', map { "$_: $h{$_}\r\n" } sort keys %h) . "\r\n" . $body;
    if ($close) {
        $c->{closing} = 1;
        $c->{rbuf} = '';
    }
}

sub _log {
    my ($self, $req, $res, %extra) = @_;
    my $body = $req->{body};
    my $json = length $body ? eval { $JSON_IN->decode($body) } : undef;
    my $rb = ref $res->{body} ? $JSON->encode($res->{body}) : ($res->{body} // '');
    my %e = (
        seq => $req->{seq}, t => $req->{t} + 0, conn => $req->{conn},
        method => $req->{method}, path => $req->{path},
        route => $req->{route}, query => $req->{query},
        params => $req->{params}, headers => $req->{headers},
        body => $body, json => $json, status => $res->{status},
        response => substr($rb, 0, 4096), fault => $res->{fault},
        violations => $req->{violations} || [], auth => $req->{auth} ? 1 : 0,
        done_t => _now_ms() + 0,
        %{ $req->{extra} || {} }, %extra,
    );
    # bytes as Latin-1 characters: decoding the line gives the bytes back
    my $line = eval { $JSON->encode(\%e) } // $JSON->encode({ %e, body => '(unencodable)' });
    syswrite $self->{log}, "$line\n";
}

sub _fault_matches {
    my ($self, $f, $req) = @_;
    return 0 if defined $f->{method} && uc $f->{method} ne $req->{method};
    for my $k (qw(route path)) {
        next unless defined $f->{$k};
        my $v = $req->{$k} // '';
        if (ref $f->{$k}) {
            my $re = $f->{$k}{re};
            return 0 unless $v =~ /$re/;
        } else {
            return 0 unless $v eq $f->{$k};
        }
    }
    if (defined $f->{body_like}) {
        my $re = $f->{body_like}{re};
        return 0 unless $req->{body} =~ /$re/;
    }
    return 1;
}

sub _take_fault {
    my ($self, $req) = @_;
    for my $f (@{ $self->{faults} }) {
        next if defined $f->{times} && $f->{times} == 0;
        next unless $self->_fault_matches($f, $req);
        if ($f->{skip}) {
            $f->{skip}--;
            next;
        }
        $f->{times} //= 1;
        $f->{times}-- if $f->{times} > 0;
        $f->{used}++;
        return $f;
    }
    return undef;
}

sub _fault_response {
    my ($self, $f) = @_;
    my $kind = $f->{kind} // '';
    my %h = %{ $f->{headers} || {} };
    $h{'Retry-After'} = $f->{retry_after} if defined $f->{retry_after};
    my $label = $f->{name} // join(' ', grep { defined } ($f->{status},
        $kind || undef, defined $f->{hang} ? "hang $f->{hang}" : undef));
    if ($kind eq 'nonjson') {
        return { status => $f->{status} // 200, kind => $kind, fault => $label,
                 headers => { 'Content-Type' => 'text/html', %h },
                 body => $f->{body} // "<html><body>Bad gateway (not JSON)</body></html>" };
    }
    if ($kind eq 'huge') {
        my $big = '{"data":"' . ('x' x (5 * 1024 * 1024)) . '"}';
        return { status => $f->{status} // 200, kind => $kind, fault => $label,
                 headers => \%h, body => $big };
    }
    if ($kind eq 'empty') {
        return { status => $f->{status} // 200, kind => $kind, fault => $label,
                 headers => \%h, body => '' };
    }
    if ($kind eq 'truncated' || $kind eq 'close') {
        return { status => $f->{status} // 200, kind => $kind, fault => $label,
                 headers => \%h,
                 body => $f->{body} // '{"truncated":"' . ('y' x 2000) . '"}' };
    }
    return undef unless defined $f->{status};
    my $body = $f->{body} // $self->_error_body($f->{status}, "injected $f->{status}");
    return { status => $f->{status}, headers => \%h, body => $body,
             fault => $label };
}

# The flavour's error body for a status and a message.
sub _error_body {
    my ($self, $status, $msg) = @_;
    my $api = $self->{api};
    if ($api eq 'kit') {
        return 'Retry later' if $status == 429;
        return { errors => [$msg] };
    }
    if ($api eq 'activecampaign') {
        return {} if $status >= 500;
        return { message => $msg } if $status == 403 || $status == 404 || $status == 429;
        return { errors => [ { title => $msg, detail => '', code => 'invalid',
                               source => { pointer => '/data/attributes' } } ] };
    }
    if ($api eq 'klaviyo') {
        my %code = (400 => 'invalid', 401 => 'not_authenticated',
            403 => 'permission_denied', 404 => 'not_found', 409 => 'conflict',
            415 => 'unsupported_media_type', 429 => 'throttled');
        return { errors => [ { id => sprintf('%08x-fake', int rand 2**31),
            status => $status, code => $code{$status} // 'error',
            title => $msg, detail => $msg, source => { pointer => '/data/' } } ] };
    }
    if ($api eq 'stripe') {
        my $type = $status == 429 ? 'invalid_request_error' : $status >= 500
            ? 'api_error' : 'invalid_request_error';
        return { error => { message => $msg, type => $type,
                 ($status == 429 ? (code => 'rate_limit') : ()) } };
    }
    return { error => $msg };
}

sub _handle {
    my ($self, $c, $req) = @_;
    my $path = $req->{path};
    if ($path eq '/__ping') {
        return $self->_respond($c, $req, { body => { ok => _true } });
    }
    if ($path eq '/__state') {
        return $self->_respond($c, $req, { body => $self->{state} });
    }
    if ($path eq '/__held') {
        return $self->_respond($c, $req, { body => [ map { $self->{held}{$_} }
            sort { $a <=> $b } keys %{ $self->{held} || {} } ] });
    }
    if ($path eq '/__control') {
        my $res = eval { $self->_do_control($JSON_IN->decode($req->{body})) }
            // { status => 400, body => { error => "control: $@" } };
        return $self->_respond($c, $req, $res);
    }

    $req->{seq} = ++$self->{seq};
    my $pre = $self->{prefix};
    my $in_prefix = $pre eq '' || $path eq $pre || index($path, "$pre/") == 0;
    $req->{route} = $in_prefix ? substr($path, length $pre) : undef;
    $req->{route} = '/' if defined $req->{route} && $req->{route} eq '';
    $req->{violations} = [];

    # the spec: route and body shape
    my $spec_404;
    if (my $s = $self->{schema_obj}) {
        if (!defined $req->{route}) {
            push @{ $req->{violations} }, "path outside the API prefix '$pre'";
            $spec_404 = 1;
        } else {
            my ($op, $tpl, $pp, $why) = $s->operation($req->{method}, $req->{route});
            if (!$op) {
                push @{ $req->{violations} }, "$why in the spec: $req->{method} $req->{route}";
                $spec_404 = 1;
            } else {
                $req->{spec_path} = $tpl;
                push @{ $req->{violations} }, $s->check_request($op, $req->{body},
                    $req->{headers}{'content-type'},
                    lenient_numbers => $self->{lenient_numbers},
                    strict_properties => $self->{strict_properties});
            }
        }
    }

    my $f = $self->_take_fault($req);
    if ($f && defined $f->{hang}) {
        $c->{hold} = { req => $req, fault => $f, due => time + $f->{hang},
                       apply => $f->{apply} // 'before' };
        $self->{held}{ $req->{seq} } = { seq => $req->{seq}, t => $req->{t} + 0,
            method => $req->{method}, route => $req->{route}, path => $path };
        if ($c->{hold}{apply} eq 'after') {
            $c->{hold}{res} = $self->_process($req, $spec_404);
        }
        return;
    }
    if ($f && !$f->{after}) {
        my $res = $self->_fault_response($f);
        if ($res) {
            $self->_log($req, $res);
            return $self->_respond($c, $req, $res);
        }
    }
    my $res = $self->_process($req, $spec_404);
    if ($f && $f->{after}) {
        my $fr = $self->_fault_response($f);
        if ($fr) {
            $fr->{fault} .= ' (after processing)';
            $res = $fr;
        }
    }
    $self->_log($req, $res);
    $self->_respond($c, $req, $res);
}

sub _drop_held {
    my ($self, $c) = @_;
    my $h = delete $c->{hold};
    delete $self->{held}{ $h->{req}{seq} };
    $self->_log($h->{req}, { status => undef, fault => "hang $h->{fault}{hang}" },
                dropped => 1);
}

sub _release {
    my ($self, $c) = @_;
    my $h = delete $c->{hold};
    my $req = $h->{req};
    delete $self->{held}{ $req->{seq} };
    my $res = $h->{res} // $self->_process($req, undef);
    $res->{fault} = "hang $h->{fault}{hang}" . ($res->{fault} ? " + $res->{fault}" : '');
    $self->_log($req, $res);
    $self->_respond($c, $req, $res);
}

# Rate limit, auth, shape, then the flavour's handler.
sub _process {
    my ($self, $req, $spec_404) = @_;
    if (my $rl = $self->{rate_limit}) {
        my $now = time;
        my $w = $self->{rl_window} ||= [];
        shift @$w while @$w && $w->[0] <= $now - ($rl->{per} // 1);
        if (@$w >= $rl->{max}) {
            return { status => 429, fault => 'rate limit',
                     headers => { defined $rl->{retry_after}
                                  ? ('Retry-After' => $rl->{retry_after}) : () },
                     body => $self->_error_body(429, 'Too many requests') };
        }
        push @$w, $now;
    }
    my $api = $self->{api};
    my $auth = "_auth_$api";
    my $deny = $self->$auth($req);
    return $deny if $deny;
    $req->{auth} = 1;
    if ($spec_404) {
        return { status => 404, body => $api eq 'activecampaign' ? {}
                 : $self->_error_body(404, 'Not Found') };
    }
    if (@{ $req->{violations} }) {
        my $st = $self->{invalid_status} // 400;
        return { status => $st, fault => 'schema',
                 body => $self->_error_body($st, join('; ', @{ $req->{violations} })) };
    }
    my $h = "_api_$api";
    my $res = eval { $self->$h($req) };
    if (!$res) {
        my $err = $@ || 'no route';
        return { status => 500, body => $self->_error_body(500, "fake: $err") }
            if $@;
        return { status => 404, body => $api eq 'activecampaign' ? {}
                 : $self->_error_body(404, 'Not Found') };
    }
    return $res;
}

sub _do_control {
    my ($self, $d) = @_;
    if ($d->{fault}) {
        push @{ $self->{faults} }, $d->{fault};
    }
    if ($d->{clear_faults}) {
        $self->{faults} = [];
    }
    if ($d->{seed}) {
        $self->_seed($d->{seed});
    }
    if ($d->{set}) {
        @{$self}{ keys %{ $d->{set} } } = values %{ $d->{set} };
        $self->{rl_window} = [] if exists $d->{set}{rate_limit};
    }
    return { body => { ok => _true, faults => $self->{faults} } };
}

sub _seed {
    my ($self, $seed) = @_;
    my $m = "_seed_$self->{api}";
    $self->$m($seed);
}

sub _id {
    my ($self, $kind) = @_;
    return ++$self->{state}{next_id}{$kind};
}

sub _json_body {
    my ($req) = @_;
    return undef unless length $req->{body};
    return eval { $JSON_IN->decode($req->{body}) };
}

sub _page_size {
    my ($self, $asked) = @_;
    my $n = $asked && $asked =~ /^\d+$/ ? $asked : $self->{page_size};
    $n = $self->{max_page_size} if $self->{max_page_size} && $n > $self->{max_page_size};
    $n = $self->{force_page_size} if $self->{force_page_size} && $n > $self->{force_page_size};
    $n = 1 if $n < 1;
    return $n;
}

# ================================================================ kit ===

sub _init_kit {
    my ($self) = @_;
    $self->{state} = {
        account => { user => { email => 'owner@example.org' },
                     account => { id => 9001, name => 'Fake Kit account',
                         plan_type => 'creator', primary_email_address =>
                         'owner@example.org', created_at => _iso(1.7e9) } },
        subscribers => {}, tags => [], taggings => {}, sequences => [],
        sequence_subs => {}, forms => [], form_subs => {}, purchases => [],
        next_id => { subscriber => 100, tag => 200, sequence => 300,
                     form => 400, purchase => 500 },
    };
}

sub _seed_kit {
    my ($self, $s) = @_;
    my $st = $self->{state};
    for my $t (@{ $s->{tags} || [] }) {
        my %t = ref $t ? %$t : (name => $t);
        $t{id} //= $self->_id('tag');
        push @{ $st->{tags} }, { id => $t{id} + 0, name => $t{name},
                                 created_at => _iso() };
    }
    for my $q (@{ $s->{sequences} || [] }) {
        my %q = ref $q ? %$q : (name => $q);
        push @{ $st->{sequences} }, { id => ($q{id} // $self->_id('sequence')) + 0,
            name => $q{name}, hold => _false, repeat => _false,
            created_at => _iso(), active => exists $q{active} ? ($q{active} ? 1 : 0) : 1 };
    }
    for my $f (@{ $s->{forms} || [] }) {
        my %f = ref $f ? %$f : (name => $f);
        push @{ $st->{forms} }, { id => ($f{id} // $self->_id('form')) + 0,
            name => $f{name}, created_at => _iso(), type => 'embed',
            format => undef, embed_js => '', embed_url => '',
            archived => _false, uid => sprintf('%x', 0xabc000 + @{ $st->{forms} }) };
    }
    for my $u (@{ $s->{subscribers} || [] }) {
        $self->_kit_upsert({ %$u });
    }
}

sub _auth_kit {
    my ($self, $req) = @_;
    my $h = $req->{headers};
    my $kind;
    if (defined $h->{'x-kit-api-key'} && $h->{'x-kit-api-key'} eq $self->{key}) {
        $kind = 'key';
    } elsif (($h->{authorization} // '') =~ /^Bearer\s+(\S+)$/
             && defined $self->{oauth} && $1 eq $self->{oauth}) {
        $kind = 'oauth';
    }
    $req->{auth_kind} = $kind;
    return undef if $kind;
    return { status => 401, body => { errors => ['The access token is invalid'] } };
}

sub _kit_sub_public {
    my ($u, %extra) = @_;
    return { id => $u->{id}, first_name => $u->{first_name},
             email_address => $u->{email_address}, state => $u->{state},
             created_at => $u->{created_at}, fields => $u->{fields} || {},
             %extra };
}

sub _kit_by_email {
    my ($self, $email) = @_;
    return undef unless defined $email;
    for my $u (values %{ $self->{state}{subscribers} }) {
        return $u if lc $u->{email_address} eq lc $email;
    }
    return undef;
}

# (subscriber, created?)
sub _kit_upsert {
    my ($self, $b) = @_;
    my $u = $self->_kit_by_email($b->{email_address});
    if ($u) {
        $u->{first_name} = $b->{first_name} if defined $b->{first_name};
        $u->{state} = $b->{state} if defined $b->{state};
        if (ref $b->{fields} eq 'HASH') {
            $u->{fields}{$_} = $b->{fields}{$_} for keys %{ $b->{fields} };
        }
        return ($u, 0);
    }
    my $id = $self->_id('subscriber');
    $u = { id => $id, email_address => $b->{email_address},
           first_name => $b->{first_name}, state => $b->{state} // 'active',
           created_at => _iso(), fields => ref $b->{fields} eq 'HASH' ? { %{ $b->{fields} } } : {} };
    $self->{state}{subscribers}{$id} = $u;
    return ($u, 1);
}

sub _kit_find {
    my ($list, $id) = @_;
    return undef unless defined $id && $id =~ /^\d+$/;
    for (@$list) { return $_ if $_->{id} == $id }
    return undef;
}

# A cursor page of $items by id: oldest first, or newest first with $desc
# (purchases: the order of the example in Kit's spec).
sub _kit_page {
    my ($self, $req, $key, $items, $pub, $desc) = @_;
    my $per = $self->_page_size($req->{params}{per_page});
    my @all = $desc ? sort { $b->{id} <=> $a->{id} } @$items
                    : sort { $a->{id} <=> $b->{id} } @$items;
    my $after = $req->{params}{after};
    if (defined $after && length $after) {
        my ($id) = (decode_base64($after) // '') =~ /^\[(\d+)\]$/;
        return { status => 400, body => { errors => ['Invalid cursor'] } }
            unless defined $id;
        @all = grep { $desc ? $_->{id} < $id : $_->{id} > $id } @all;
    }
    my $more = @all > $per;
    my @page = splice @all, 0, $per;
    my $cur = sub { encode_base64("[$_[0]]", '') };
    return { status => 200, body => {
        $key => [ map { $pub ? $pub->($_) : $_ } @page ],
        pagination => {
            has_previous_page => defined $after && length $after ? _true : _false,
            has_next_page => $more ? _true : _false,
            start_cursor => @page ? $cur->($page[0]{id}) : undef,
            end_cursor => @page ? $cur->($page[-1]{id}) : undef,
            per_page => $per + 0,
        } } };
}

sub _api_kit {
    my ($self, $req) = @_;
    my ($m, $r) = ($req->{method}, $req->{route} // '');
    my $st = $self->{state};
    my $b = _json_body($req) // {};
    my $nf = sub { { status => 404, body => { errors => ['Not Found'] } } };
    my $e422 = sub { { status => 422, body => { errors => [ $_[0] ] } } };

    if ($m eq 'GET' && $r eq '/account') {
        return { status => 200, body => $st->{account} };
    }
    if ($m eq 'GET' && $r =~ m{^/(tags|sequences|forms)$}) {
        my $k = $1;
        my $pub = $k eq 'tags' ? sub { { id => $_[0]{id}, name => $_[0]{name},
                                         created_at => $_[0]{created_at} } }
                : $k eq 'sequences' ? sub { my %x = %{ $_[0] }; delete $x{active}; \%x }
                : undef;
        return $self->_kit_page($req, $k, $st->{$k}, $pub);
    }
    if ($m eq 'POST' && $r eq '/tags') {
        my $name = $b->{name};
        return $e422->("Name can't be blank") unless defined $name && length $name;
        for my $t (@{ $st->{tags} }) {
            return { status => 200, body => { tag => $t } }
                if lc $t->{name} eq lc $name;
        }
        my $t = { id => $self->_id('tag'), name => $name, created_at => _iso() };
        push @{ $st->{tags} }, $t;
        return { status => 201, body => { tag => $t } };
    }
    if ($m eq 'GET' && $r eq '/subscribers') {
        my $email = $req->{params}{email_address};
        my $status = $req->{params}{status} // 'active';
        my @u = grep {
            (!defined $email || lc $_->{email_address} eq lc $email)
            && ($status eq 'all' || $_->{state} eq $status)
        } values %{ $st->{subscribers} };
        return $self->_kit_page($req, 'subscribers', \@u, sub { _kit_sub_public($_[0]) });
    }
    if ($m eq 'POST' && $r eq '/subscribers') {
        my $email = $b->{email_address} // '';
        return $e422->('Email address is invalid')
            unless $email =~ /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
        my ($u, $new) = $self->_kit_upsert($b);
        return { status => $new ? 201 : 200,
                 body => { subscriber => _kit_sub_public($u) } };
    }
    if ($m eq 'GET' && $r =~ m{^/subscribers/(\d+)$}) {
        my $u = $st->{subscribers}{$1} or return $nf->();
        return { status => 200, body => { subscriber => _kit_sub_public($u) } };
    }
    if ($m eq 'GET' && $r =~ m{^/subscribers/(\d+)/tags$}) {
        my $u = $st->{subscribers}{$1} or return $nf->();
        my @t = grep { $st->{taggings}{ $_->{id} }{ $u->{id} } } @{ $st->{tags} };
        return $self->_kit_page($req, 'tags', \@t, sub {
            { id => $_[0]{id}, name => $_[0]{name},
              tagged_at => $st->{taggings}{ $_[0]{id} }{ $u->{id} } } });
    }
    if ($m eq 'POST' && $r =~ m{^/(tags|sequences|forms)/(\d+)/subscribers$}) {
        my ($k, $id) = ($1, $2);
        my $obj = _kit_find($st->{$k}, $id) or return $nf->();
        my $email = $b->{email_address};
        return $e422->("Either subscriber id or email address is required")
            unless defined $email && length $email;
        my $u = $self->_kit_by_email($email)
            or return $e422->('Subscriber not found');
        return $e422->('Sequence is inactive')
            if $k eq 'sequences' && !$obj->{active};
        my $map = { tags => 'taggings', sequences => 'sequence_subs',
                    forms => 'form_subs' }->{$k};
        my $had = $st->{$map}{$id}{ $u->{id} };
        $st->{$map}{$id}{ $u->{id} } //= _iso();
        my $at = $k eq 'tags' ? 'tagged_at' : 'added_at';
        return { status => $had ? 200 : 201, body => { subscriber =>
            _kit_sub_public($u, $at => $st->{$map}{$id}{ $u->{id} }) } };
    }
    if ($m eq 'DELETE' && $r =~ m{^/tags/(\d+)/subscribers/(\d+)$}) {
        my ($tid, $sid) = ($1, $2);
        _kit_find($st->{tags}, $tid) or return $nf->();
        $st->{subscribers}{$sid} or return $nf->();
        delete $st->{taggings}{$tid}{$sid} or return $nf->();
        return { status => 204, body => '' };
    }
    if ($m eq 'DELETE' && $r =~ m{^/tags/(\d+)/subscribers$}) {
        my $tid = $1;
        _kit_find($st->{tags}, $tid) or return $nf->();
        my $u = $self->_kit_by_email($b->{email_address}) or return $nf->();
        delete $st->{taggings}{$tid}{ $u->{id} } or return $nf->();
        return { status => 204, body => '' };
    }
    if ($m eq 'POST' && $r eq '/purchases') {
        return { status => 401, body => { errors => [
            'API Key authentication is not supported for this endpoint. Use an OAuth access token.'] } }
            unless ($req->{auth_kind} // '') eq 'oauth';
        my $p = $b->{purchase};
        return $e422->('Transaction cannot be blank')
            unless ref $p eq 'HASH' && defined $p->{transaction_id} && length $p->{transaction_id};
        $self->_kit_upsert({ email_address => $p->{email_address},
                             first_name => $p->{first_name} });
        my $rec = { %$p, id => $self->_id('purchase') };
        push @{ $st->{purchases} }, $rec;
        return { status => 201, body => { purchase => $rec } };
    }
    if ($m eq 'GET' && $r eq '/purchases') {
        return { status => 401, body => { errors => [
            'API Key authentication is not supported for this endpoint. Use an OAuth access token.'] } }
            unless ($req->{auth_kind} // '') eq 'oauth';
        return $self->_kit_page($req, 'purchases', $st->{purchases}, undef, 1);
    }
    return undef;
}

# ===================================================== activecampaign ===

sub _init_activecampaign {
    my ($self) = @_;
    $self->{state} = {
        user => { id => '1', username => 'admin', firstName => 'Fake',
                  lastName => 'Owner', email => 'owner@example.org' },
        contacts => {}, tags => [], contactTags => {}, automations => [],
        contactAutomations => {}, lists => [], contactLists => {},
        fields => [], connections => [], ecomCustomers => [],
        ecomOrders => [],
        next_id => { map { $_ => 0 } qw(contact tag contactTag automation
            contactAutomation list contactList field connection
            ecomCustomer ecomOrder) },
    };
}

sub _ac_now { strftime('%Y-%m-%dT%H:%M:%S-05:00', gmtime(time - 5 * 3600)) }

sub _seed_activecampaign {
    my ($self, $s) = @_;
    my $st = $self->{state};
    for my $t (@{ $s->{tags} || [] }) {
        my %t = ref $t ? %$t : (tag => $t);
        push @{ $st->{tags} }, { id => '' . ($t{id} // $self->_id('tag')),
            tag => $t{tag} // $t{name}, tagType => 'contact',
            description => '', cdate => _ac_now() };
    }
    for my $a (@{ $s->{automations} || [] }) {
        my %a = ref $a ? %$a : (name => $a);
        push @{ $st->{automations} }, { id => '' . ($a{id} // $self->_id('automation')),
            name => $a{name}, status => '' . ($a{status} // 1),
            cdate => _ac_now(), entered => '0', exited => '0' };
    }
    for my $l (@{ $s->{lists} || [] }) {
        my %l = ref $l ? %$l : (name => $l);
        my $id = '' . ($l{id} // $self->_id('list'));
        push @{ $st->{lists} }, { id => $id, name => $l{name},
            stringid => lc($l{name} =~ s/\W+/-/gr), cdate => _ac_now() };
    }
    for my $f (@{ $s->{fields} || [] }) {
        my %f = ref $f ? %$f : (title => $f);
        push @{ $st->{fields} }, { id => '' . ($f{id} // $self->_id('field')),
            title => $f{title}, type => $f{type} // 'text',
            perstag => $f{perstag} // uc($f{title} =~ s/\W+/_/gr) };
    }
    for my $c (@{ $s->{contacts} || [] }) {
        $self->_ac_sync({ %$c });
    }
    for my $c (@{ $s->{connections} || [] }) {
        push @{ $st->{connections} }, { id => '' . $self->_id('connection'),
            service => $c->{service}, externalid => $c->{externalid},
            name => $c->{name} // $c->{service}, status => '1',
            logoUrl => '', linkUrl => '' };
    }
}

sub _auth_activecampaign {
    my ($self, $req) = @_;
    my $t = $req->{headers}{'api-token'};
    return undef if defined $t && $t eq $self->{key};
    return { status => 403, body => { message => 'No Result found for ApiToken' } }
        if defined $t;
    return { status => 401, body => { message => 'An API token is required' } };
}

sub _ac_contact_by_email {
    my ($self, $email) = @_;
    return undef unless defined $email;
    for my $c (values %{ $self->{state}{contacts} }) {
        return $c if lc $c->{email} eq lc $email;
    }
    return undef;
}

sub _ac_sync {
    my ($self, $in) = @_;
    my $st = $self->{state};
    my $c = $self->_ac_contact_by_email($in->{email});
    my $new = !$c;
    if ($new) {
        my $id = '' . $self->_id('contact');
        $c = $st->{contacts}{$id} = { id => $id, email => $in->{email},
            firstName => '', lastName => '', phone => '', cdate => _ac_now(),
            fieldValues => {} };
    }
    for my $k (qw(firstName lastName phone)) {
        $c->{$k} = $in->{$k} if defined $in->{$k};
    }
    for my $fv (@{ $in->{fieldValues} || [] }) {
        next unless ref $fv eq 'HASH' && defined $fv->{field};
        $c->{fieldValues}{ $fv->{field} } = $fv->{value};
    }
    $c->{udate} = _ac_now();
    return ($c, $new);
}

sub _ac_pub {
    my ($c) = @_;
    my %x = %$c;
    delete $x{fieldValues};
    return { %x, links => {} };
}

sub _ac_paged {
    my ($self, $req, $key, $items) = @_;
    my $limit = $self->_page_size($req->{params}{limit});
    my $off = $req->{params}{offset} // 0;
    $off = 0 unless $off =~ /^\d+$/;
    my @all = sort { $a->{id} <=> $b->{id} } @$items;
    my $end = $off + $limit - 1;
    $end = $#all if $end > $#all;
    my @page = @all[ $off .. $end ];
    return { status => 200, body => { $key => \@page,
             meta => { total => '' . scalar(@all) } } };
}

sub _ac_err {
    my ($status, $title, $code, $pointer) = @_;
    return { status => $status, body => { errors => [ { title => $title,
        detail => '', code => $code // 'invalid',
        source => { pointer => $pointer // '/data/attributes' } } ] } };
}

sub _api_activecampaign {
    my ($self, $req) = @_;
    my ($m, $r) = ($req->{method}, $req->{route} // '');
    my $st = $self->{state};
    my $b = _json_body($req) // {};
    my $p = $req->{params};
    my $nf = sub { { status => 404, body => { message => "No Result found for $_[0] with id $_[1]" } } };

    if ($m eq 'GET' && $r eq '/users/me') {
        return { status => 200, body => { user => $st->{user} } };
    }
    if ($m eq 'POST' && $r eq '/contact/sync') {
        my $in = $b->{contact} || {};
        return _ac_err(422, 'Contact Email Address is not valid.', 'email_invalid',
                       '/data/attributes/email')
            unless ($in->{email} // '') =~ /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
        my ($c, $new) = $self->_ac_sync($in);
        my @fv = map { { contact => $c->{id}, field => "$_",
                         value => $c->{fieldValues}{$_} } } sort keys %{ $c->{fieldValues} };
        return { status => $new ? 201 : 200,
                 body => { fieldValues => \@fv, contact => _ac_pub($c) } };
    }
    if ($m eq 'GET' && $r eq '/contacts') {
        my $email = $p->{email} // $p->{'filters[email]'};
        my @c = grep { !defined $email || lc $_->{email} eq lc $email }
                values %{ $st->{contacts} };
        my $res = $self->_ac_paged($req, 'contacts', [ map { _ac_pub($_) } @c ]);
        return $res;
    }
    if ($m eq 'GET' && $r =~ m{^/contacts/(\d+)$}) {
        my $c = $st->{contacts}{$1} or return $nf->('Subscriber', $1);
        return { status => 200, body => { contact => _ac_pub($c) } };
    }
    if ($m eq 'GET' && $r =~ m{^/contacts/(\d+)/(contactTags|contactLists|contactAutomations)$}) {
        my ($id, $k) = ($1, $2);
        $st->{contacts}{$id} or return $nf->('Subscriber', $id);
        my @x = grep { $_->{contact} eq $id } values %{ $st->{$k} };
        return { status => 200, body => { $k => [ sort { $a->{id} <=> $b->{id} } @x ],
                                          meta => { total => '' . scalar @x } } };
    }
    if ($m eq 'GET' && $r eq '/tags') {
        my $q = $p->{search} // $p->{'filters[search][contains]'};
        my $eq = $p->{'filters[search][eq]'};
        my @t = grep {
            (!defined $q || index(lc $_->{tag}, lc $q) >= 0)
            && (!defined $eq || lc $_->{tag} eq lc $eq)
        } @{ $st->{tags} };
        return $self->_ac_paged($req, 'tags', \@t);
    }
    if ($m eq 'GET' && $r =~ m{^/tags/(\d+)$}) {
        my ($t) = grep { $_->{id} eq $1 } @{ $st->{tags} };
        return $t ? { status => 200, body => { tag => $t } } : $nf->('Tag', $1);
    }
    if ($m eq 'POST' && $r eq '/tags') {
        my $in = $b->{tag} || {};
        my $name = $in->{tag};
        return _ac_err(422, 'Tag name is required', 'field_missing', '/data/attributes/tag')
            unless defined $name && length $name;
        return _ac_err(422, 'The tag name already exists', 'duplicate',
                       '/data/attributes/tag')
            if grep { lc $_->{tag} eq lc $name } @{ $st->{tags} };
        my $t = { id => '' . $self->_id('tag'), tag => $name,
                  tagType => $in->{tagType} // 'contact',
                  description => $in->{description} // '', cdate => _ac_now() };
        push @{ $st->{tags} }, $t;
        return { status => 201, body => { tag => $t } };
    }
    if ($m eq 'POST' && $r eq '/contactTags') {
        my $in = $b->{contactTag} || {};
        my ($cid, $tid) = map { defined $_ ? "$_" : '' } @$in{qw(contact tag)};
        my $c = $st->{contacts}{$cid} or return $nf->('Subscriber', $cid);
        grep { $_->{id} eq $tid } @{ $st->{tags} } or return $nf->('Tag', $tid);
        my ($ct) = grep { $_->{contact} eq $cid && $_->{tag} eq $tid }
                   values %{ $st->{contactTags} };
        my $new = !$ct;
        if ($new) {
            my $id = '' . $self->_id('contactTag');
            $ct = $st->{contactTags}{$id} = { id => $id, contact => $cid,
                                              tag => $tid, cdate => _ac_now() };
        }
        return { status => $new ? 201 : 200,
                 body => { contacts => [ _ac_pub($c) ], contactTag => $ct } };
    }
    if ($m eq 'DELETE' && $r =~ m{^/contactTags/(\d+)$}) {
        delete $st->{contactTags}{$1} or return $nf->('ContactTag', $1);
        return { status => 200, body => {} };
    }
    if ($m eq 'GET' && $r eq '/automations') {
        return $self->_ac_paged($req, 'automations', $st->{automations});
    }
    if ($m eq 'POST' && $r eq '/contactAutomations') {
        my $in = $b->{contactAutomation} || {};
        my ($cid, $aid) = map { defined $_ ? "$_" : '' } @$in{qw(contact automation)};
        my $c = $st->{contacts}{$cid} or return $nf->('Subscriber', $cid);
        my ($a) = grep { $_->{id} eq $aid } @{ $st->{automations} };
        return $nf->('Automation', $aid) unless $a;
        return _ac_err(422, 'The automation is inactive', 'inactive')
            unless $a->{status} eq '1';
        my $id = '' . $self->_id('contactAutomation');
        my $ca = $st->{contactAutomations}{$id} = { id => $id, contact => $cid,
            seriesid => $aid, automation => $aid, status => '1',
            adddate => _ac_now() };
        return { status => 201, body => { contacts => [ _ac_pub($c) ],
                                          contactAutomation => $ca } };
    }
    if ($m eq 'GET' && $r eq '/lists') {
        my $name = $p->{'filters[name]'};
        my @l = grep { !defined $name || lc $_->{name} eq lc $name } @{ $st->{lists} };
        return $self->_ac_paged($req, 'lists', \@l);
    }
    if ($m eq 'POST' && $r eq '/contactLists') {
        my $in = $b->{contactList} || {};
        my ($cid, $lid) = map { defined $_ ? "$_" : '' } @$in{qw(contact list)};
        my $c = $st->{contacts}{$cid} or return $nf->('Subscriber', $cid);
        grep { $_->{id} eq $lid } @{ $st->{lists} } or return $nf->('List', $lid);
        my ($cl) = grep { $_->{contact} eq $cid && $_->{list} eq $lid }
                   values %{ $st->{contactLists} };
        my $new = !$cl;
        if ($new) {
            my $id = '' . $self->_id('contactList');
            $cl = $st->{contactLists}{$id} = { id => $id, contact => $cid,
                                               list => $lid };
        }
        $cl->{status} = '' . ($in->{status} // 1);
        return { status => $new ? 201 : 200,
                 body => { contacts => [ _ac_pub($c) ], contactList => $cl } };
    }
    if ($m eq 'GET' && $r eq '/fields') {
        return $self->_ac_paged($req, 'fields', $st->{fields});
    }
    if ($m eq 'GET' && $r eq '/connections') {
        my @c = grep {
            (!defined $p->{'filters[service]'} || $_->{service} eq $p->{'filters[service]'})
            && (!defined $p->{'filters[externalid]'} || $_->{externalid} eq $p->{'filters[externalid]'})
        } @{ $st->{connections} };
        return $self->_ac_paged($req, 'connections', \@c);
    }
    if ($m eq 'POST' && $r eq '/connections') {
        my $in = $b->{connection} || {};
        return _ac_err(422, 'A connection with this service and externalid already exists.',
                       'duplicate', '/data/attributes/externalid')
            if grep { $_->{service} eq ($in->{service} // '')
                      && $_->{externalid} eq ($in->{externalid} // '') } @{ $st->{connections} };
        my $c = { %$in, id => '' . $self->_id('connection'), status => '1' };
        push @{ $st->{connections} }, $c;
        return { status => 201, body => { connection => $c } };
    }
    if ($m eq 'GET' && $r eq '/ecomCustomers') {
        my @c = grep {
            (!defined $p->{'filters[email]'} || lc $_->{email} eq lc $p->{'filters[email]'})
            && (!defined $p->{'filters[connectionid]'} || $_->{connectionid} eq $p->{'filters[connectionid]'})
            && (!defined $p->{'filters[externalid]'} || $_->{externalid} eq $p->{'filters[externalid]'})
        } @{ $st->{ecomCustomers} };
        return $self->_ac_paged($req, 'ecomCustomers', \@c);
    }
    if ($m eq 'POST' && $r eq '/ecomCustomers') {
        my $in = $b->{ecomCustomer} || {};
        my $conn = '' . ($in->{connectionid} // '');
        return _ac_err(422, 'The connection does not exist', 'related_missing',
                       '/data/attributes/connectionid')
            unless grep { $_->{id} eq $conn } @{ $st->{connections} };
        return _ac_err(422, 'The integration customer already exists in the system.',
                       'duplicate', '/data/attributes/externalid')
            if grep { $_->{connectionid} eq $conn
                      && $_->{externalid} eq ($in->{externalid} // '') } @{ $st->{ecomCustomers} };
        my $c = { %$in, connectionid => $conn, id => '' . $self->_id('ecomCustomer') };
        push @{ $st->{ecomCustomers} }, $c;
        return { status => 201, body => { ecomCustomer => $c } };
    }
    if ($m eq 'GET' && $r eq '/ecomOrders') {
        return $self->_ac_paged($req, 'ecomOrders', $st->{ecomOrders});
    }
    if ($m eq 'POST' && $r eq '/ecomOrders') {
        my $in = $b->{ecomOrder} || {};
        my $v = $req->{violations};
        if (!defined $in->{externalid} && !defined $in->{externalcheckoutid}) {
            push @$v, 'ecomOrder needs externalid or externalcheckoutid';
        }
        if (defined $in->{externalcheckoutid} && !defined $in->{abandonedDate}) {
            push @$v, 'ecomOrder with externalcheckoutid needs abandonedDate';
        }
        return _ac_err(422, join('; ', @$v), 'field_missing') if @$v;
        my $conn = '' . ($in->{connectionid} // '');
        return _ac_err(422, 'The connection does not exist', 'related_missing',
                       '/data/attributes/connectionid')
            unless grep { $_->{id} eq $conn } @{ $st->{connections} };
        my $cust = '' . ($in->{customerid} // '');
        return _ac_err(422, 'The customer does not exist', 'related_missing',
                       '/data/attributes/customerid')
            unless grep { $_->{id} eq $cust } @{ $st->{ecomCustomers} };
        return _ac_err(422, 'The integration order already exists in the system.',
                       'duplicate', '/data/attributes/externalid')
            if defined $in->{externalid}
               && grep { $_->{connectionid} eq $conn && defined $_->{externalid}
                         && $_->{externalid} eq $in->{externalid} } @{ $st->{ecomOrders} };
        my $o = { %$in, connectionid => $conn, id => '' . $self->_id('ecomOrder') };
        push @{ $st->{ecomOrders} }, $o;
        return { status => 201, body => { ecomOrder => $o } };
    }
    return undef;
}

# ============================================================ klaviyo ===

sub _init_klaviyo {
    my ($self) = @_;
    $self->{state} = {
        account => { type => 'account', id => 'FakeAcct1',
            attributes => { test_account => _false,
                contact_information => { default_sender_name => 'Fake',
                    default_sender_email => 'owner@example.org',
                    website_url => 'https://example.org',
                    organization_name => 'Fake Co', street_address => {} },
                industry => 'Education', timezone => 'UTC',
                preferred_currency => 'USD', public_api_key => 'FakeAcct1',
                locale => 'en-US' } },
        profiles => {}, events => [], event_keys => {}, metrics => {},
        lists => [], list_members => {},
        next_id => { profile => 0, list => 0, metric => 0, event => 0 },
    };
}

sub _kl_id {
    my ($self, $kind) = @_;
    my $n = $self->_id($kind);
    return sprintf '01FAKE%s%014d', uc substr($kind, 0, 2), $n if $kind eq 'profile';
    return sprintf '%s%04d', { list => 'LsT', metric => 'MeT', event => 'EvT' }->{$kind}, $n;
}

sub _seed_klaviyo {
    my ($self, $s) = @_;
    my $st = $self->{state};
    for my $l (@{ $s->{lists} || [] }) {
        my %l = ref $l ? %$l : (name => $l);
        push @{ $st->{lists} }, { id => $l{id} // $self->_kl_id('list'),
            name => $l{name}, created => _iso(), updated => _iso(),
            opt_in_process => 'single_opt_in' };
    }
    for my $p (@{ $s->{profiles} || [] }) {
        $self->_kl_upsert({ %$p });
    }
}

sub _auth_klaviyo {
    my ($self, $req) = @_;
    my $h = $req->{headers};
    my $auth = $h->{authorization} // '';
    if ($auth ne "Klaviyo-API-Key $self->{key}") {
        return { status => 401, body => $self->_error_body(401,
            'Missing or invalid private key.') };
    }
    my $rev = $h->{revision};
    if (!defined $rev || $rev ne $self->{revision}) {
        push @{ $req->{violations} }, 'revision header '
            . (defined $rev ? "'$rev'" : 'missing') . ", want '$self->{revision}'";
        return { status => 400, body => $self->_error_body(400, defined $rev
            ? "Invalid revision '$rev'" : 'Missing revision header') };
    }
    if (length $req->{body}) {
        my $ct = $h->{'content-type'} // '';
        if ($ct !~ m{^application/vnd\.api\+json\s*(;|$)}i) {
            my $msg = "Content-Type '$ct': want application/vnd.api+json";
            push @{ $req->{violations} }, $msg
                unless grep { /Content-Type/ } @{ $req->{violations} };
            return { status => 415, body => $self->_error_body(415, $msg) };
        }
    }
    return undef;
}

sub _kl_by {
    my ($self, $k, $v) = @_;
    return undef unless defined $v;
    for my $p (values %{ $self->{state}{profiles} }) {
        my $x = $p->{attributes}{$k};
        return $p if defined $x && ($k eq 'email' ? lc $x eq lc $v : $x eq $v);
    }
    return undef;
}

# (profile, created?); $a: attributes (and maybe id)
sub _kl_upsert {
    my ($self, $a, $id) = @_;
    my $st = $self->{state};
    my $p = (defined $id ? $st->{profiles}{$id} : undef)
        // $self->_kl_by(email => $a->{email})
        // $self->_kl_by(external_id => $a->{external_id})
        // $self->_kl_by(phone_number => $a->{phone_number});
    my $new = !$p;
    if ($new) {
        my $pid = $self->_kl_id('profile');
        $p = $st->{profiles}{$pid} = { type => 'profile', id => $pid,
            attributes => { properties => {}, created => _iso() } };
    }
    for my $k (keys %$a) {
        next if $k eq 'properties';
        $p->{attributes}{$k} = $a->{$k};
    }
    if (ref $a->{properties} eq 'HASH') {
        $p->{attributes}{properties}{$_} = $a->{properties}{$_}
            for keys %{ $a->{properties} };
    }
    $p->{attributes}{updated} = _iso();
    return ($p, $new);
}

sub _kl_err {
    my ($self, $status, $msg, $pointer) = @_;
    my $b = $self->_error_body($status, $msg);
    $b->{errors}[0]{source}{pointer} = $pointer if $pointer;
    return { status => $status, body => $b };
}

sub _api_klaviyo {
    my ($self, $req) = @_;
    my ($m, $r) = ($req->{method}, $req->{route} // '');
    my $st = $self->{state};
    my $b = _json_body($req) // {};
    my $self_url = $self->base;

    if ($m eq 'GET' && $r eq '/accounts') {
        return { status => 200, body => { data => [ $st->{account} ],
                 links => { self => "$self_url/accounts", next => undef, prev => undef } } };
    }
    if ($m eq 'POST' && $r eq '/profile-import') {
        my $d = $b->{data} || {};
        my $a = $d->{attributes} || {};
        return $self->_kl_err(400, 'One of email, phone_number, external_id or id is required',
                              '/data/attributes')
            unless defined $a->{email} || defined $a->{phone_number}
                || defined $a->{external_id} || defined $d->{id};
        my ($p, $new) = $self->_kl_upsert($a, $d->{id});
        return { status => $new ? 201 : 200, body => { data => { %$p,
                 links => { self => "$self_url/profiles/$p->{id}/" } } } };
    }
    if ($m eq 'POST' && $r eq '/profiles') {
        my $a = ($b->{data} || {})->{attributes} || {};
        my $dup = $self->_kl_by(email => $a->{email}) // $self->_kl_by(external_id => $a->{external_id});
        if ($dup) {
            my $e = $self->_kl_err(409, 'A profile already exists with one of these identifiers.',
                                   '/data/attributes');
            $e->{body}{errors}[0]{code} = 'duplicate_profile';
            $e->{body}{errors}[0]{meta} = { duplicate_profile_id => $dup->{id} };
            return $e;
        }
        my ($p) = $self->_kl_upsert($a);
        return { status => 201, body => { data => $p } };
    }
    if ($m eq 'GET' && $r eq '/profiles') {
        my $f = $req->{params}{filter} // '';
        my @p = values %{ $st->{profiles} };
        if ($f =~ /^equals\((email|external_id|phone_number),"(.*)"\)$/) {
            my ($k, $v) = ($1, $2);
            @p = grep { defined $_->{attributes}{$k} && lc $_->{attributes}{$k} eq lc $v } @p;
        } elsif (length $f) {
            return $self->_kl_err(400, "Unsupported filter '$f'", '/filter');
        }
        return { status => 200, body => { data => [ sort { $a->{id} cmp $b->{id} } @p ],
                 links => { self => "$self_url/profiles", next => undef, prev => undef } } };
    }
    if ($m eq 'POST' && $r eq '/events') {
        my $a = ($b->{data} || {})->{attributes} || {};
        my $pd = (($a->{profile} || {})->{data}) || {};
        my $pa = $pd->{attributes} || {};
        return $self->_kl_err(400, 'The profile needs an identifier (email, phone_number, external_id, id)',
                              '/data/attributes/profile/data/attributes')
            unless defined $pa->{email} || defined $pa->{phone_number}
                || defined $pa->{external_id} || defined $pd->{id};
        my $mname = ((($a->{metric} || {})->{data} || {})->{attributes} || {})->{name};
        return $self->_kl_err(400, 'The metric needs a name',
                              '/data/attributes/metric/data/attributes/name')
            unless defined $mname && length $mname;
        my ($p) = $self->_kl_upsert({ map { $_ => $pa->{$_} } grep { $_ ne 'meta' } keys %$pa },
                                    $pd->{id});
        $st->{metrics}{$mname} //= $self->_kl_id('metric');
        my $uid = $a->{unique_id};
        my $key = join "\0", $p->{id}, $mname, $uid // '';
        my $dup = defined $uid && $st->{event_keys}{$key}++;
        push @{ $st->{events} }, { id => $self->_kl_id('event'), metric => $mname,
            profile_id => $p->{id}, email => $p->{attributes}{email},
            unique_id => $uid, time => $a->{time}, value => $a->{value},
            value_currency => $a->{value_currency},
            properties => $a->{properties}, duplicate => $dup ? 1 : 0 };
        return { status => 202, body => '' };
    }
    if ($m eq 'GET' && $r eq '/lists') {
        my $f = $req->{params}{filter} // '';
        my @l = @{ $st->{lists} };
        if ($f =~ /^equals\(name,"(.*)"\)$/) {
            my $n = $1;
            @l = grep { $_->{name} eq $n } @l;
        } elsif ($f =~ /^any\(name,\[(.*)\]\)$/) {
            my %n = map { $_ => 1 } $1 =~ /"([^"]*)"/g;
            @l = grep { $n{ $_->{name} } } @l;
        } elsif (length $f) {
            return $self->_kl_err(400, "Unsupported filter '$f'", '/filter');
        }
        my $size = $self->_page_size($req->{params}{'page[size]'});
        my $cursor = $req->{params}{'page[cursor]'};
        my $from = 0;
        if (defined $cursor) {
            ($from) = (decode_base64($cursor) // '') =~ /^off:(\d+)$/;
            return $self->_kl_err(400, 'Invalid page cursor', '/page[cursor]')
                unless defined $from;
        }
        my $end = $from + $size - 1;
        $end = $#l if $end > $#l;
        my @page = @l[ $from .. $end ];
        my $next;
        if ($from + $size < @l) {
            my $c = encode_base64('off:' . ($from + $size), '');
            my $q = "page[cursor]=$c";
            $q .= '&filter=' . $f if length $f;
            $next = "$self_url/lists?$q";
        }
        return { status => 200, body => {
            data => [ map { { type => 'list', id => $_->{id},
                attributes => { name => $_->{name}, created => $_->{created},
                    updated => $_->{updated}, opt_in_process => $_->{opt_in_process} },
                links => { self => "$self_url/lists/$_->{id}/" } } } @page ],
            links => { self => "$self_url/lists", next => $next, prev => undef } } };
    }
    if ($r =~ m{^/lists/([^/]+)/relationships/profiles$} && ($m eq 'POST' || $m eq 'DELETE')) {
        my $lid = $1;
        grep { $_->{id} eq $lid } @{ $st->{lists} }
            or return $self->_kl_err(404, "A list with id $lid does not exist.");
        my @ids = map { $_->{id} } @{ $b->{data} || [] };
        for my $id (@ids) {
            return $self->_kl_err(400, "Invalid profile id '$id'", '/data')
                unless defined $id && $st->{profiles}{$id};
        }
        for my $id (@ids) {
            if ($m eq 'POST') { $st->{list_members}{$lid}{$id} = _iso() }
            else { delete $st->{list_members}{$lid}{$id} }
        }
        return { status => 204, body => '' };
    }
    return undef;
}

# ============================================================= stripe ===

my %STRIPE_COLL = (
    customers => 'customer', subscriptions => 'subscription',
    charges => 'charge', invoices => 'invoice', events => 'event',
    'checkout/sessions' => 'checkout.session',
    payment_intents => 'payment_intent', products => 'product',
    prices => 'price', refunds => 'refund',
);

sub _init_stripe {
    my ($self) = @_;
    $self->{state} = { objects => { map { $_ => [] } keys %STRIPE_COLL },
                       line_items => {} };
}

sub _seed_stripe {
    my ($self, $s) = @_;
    my $st = $self->{state};
    for my $k (keys %$s) {
        if ($k eq 'line_items') {
            for my $cs (keys %{ $s->{line_items} }) {
                push @{ $st->{line_items}{$cs} }, @{ $s->{line_items}{$cs} };
            }
            next;
        }
        (my $coll = $k) =~ s/^checkout_sessions$/checkout\/sessions/;
        die "fake stripe: cannot seed '$k'\n" unless $STRIPE_COLL{$coll};
        for my $o (@{ $s->{$k} }) {
            my $list = $st->{objects}{$coll};
            @$list = grep { $_->{id} ne $o->{id} } @$list;    # replace
            push @$list, { %$o };
        }
    }
}

sub _auth_stripe {
    my ($self, $req) = @_;
    my $a = $req->{headers}{authorization} // '';
    my $k;
    if ($a =~ /^Bearer\s+(\S+)$/) {
        $k = $1;
    } elsif ($a =~ /^Basic\s+(\S+)$/) {
        ($k) = split /:/, decode_base64($1) // '', 2;
    }
    return undef if defined $k && $k eq $self->{key};
    my $msg = defined $k
        ? 'Invalid API Key provided: ' . substr($k, 0, 8) . '*' x 4 . substr($k, -4)
        : 'You did not provide an API key. You need to provide your API key in '
          . 'the Authorization header, using Bearer auth.';
    return { status => 401, body => { error => { message => $msg,
             type => 'invalid_request_error' } } };
}

sub _stripe_missing {
    my ($what, $id, $param) = @_;
    return { status => 404, body => { error => { code => 'resource_missing',
        doc_url => 'https://stripe.com/docs/error-codes/resource-missing',
        message => "No such $what: '$id'", param => $param // 'id',
        type => 'invalid_request_error' } } };
}

sub _stripe_bad {
    my ($msg, $param) = @_;
    return { status => 400, body => { error => { message => $msg,
        param => $param, type => 'invalid_request_error' } } };
}

sub _stripe_public {
    my ($o) = @_;
    return { map { $_ => $o->{$_} } grep { !/^_/ } keys %$o };
}

# A Stripe list over @$items (already in Stripe's order).
sub _stripe_list {
    my ($self, $req, $url, $items, $kind) = @_;
    my $p = $req->{params};
    my $limit = $p->{limit} // 10;
    return _stripe_bad("Invalid integer: $limit", 'limit')
        unless $limit =~ /^\d+$/;
    return _stripe_bad('This value must be less than or equal to 100 (it currently is '
                       . "'$limit')", 'limit') if $limit > 100;
    return _stripe_bad('This value must be greater than or equal to 1.', 'limit')
        if $limit < 1;
    $limit = $self->{force_page_size} if $self->{force_page_size} && $limit > $self->{force_page_size};
    my @all = @$items;
    if (defined(my $sa = $p->{starting_after})) {
        my ($i) = grep { $all[$_]{id} eq $sa } 0 .. $#all;
        return _stripe_missing($kind // 'object', $sa, 'starting_after')
            unless defined $i;
        @all = @all[ $i + 1 .. $#all ];
    } elsif (defined(my $eb = $p->{ending_before})) {
        my ($i) = grep { $all[$_]{id} eq $eb } 0 .. $#all;
        return _stripe_missing($kind // 'object', $eb, 'ending_before')
            unless defined $i;
        @all = @all[ ($i - $limit < 0 ? 0 : $i - $limit) .. $i - 1 ];
    }
    my $more = @all > $limit;
    my @page = @all[ 0 .. ($more ? $limit : scalar @all) - 1 ];
    return { status => 200, body => { object => 'list', url => $url,
             has_more => $more ? _true : _false,
             data => [ map { _stripe_public($_) } @page ] } };
}

sub _stripe_filter {
    my ($self, $req, $coll, @items) = @_;
    my $p = $req->{params};
    my $cr = sub {
        my ($o) = @_;
        my $c = $o->{created} // 0;
        return 0 if defined $p->{created} && !ref $p->{created} && $c != $p->{created};
        return 0 if defined $p->{'created[gte]'} && $c < $p->{'created[gte]'};
        return 0 if defined $p->{'created[gt]'} && $c <= $p->{'created[gt]'};
        return 0 if defined $p->{'created[lte]'} && $c > $p->{'created[lte]'};
        return 0 if defined $p->{'created[lt]'} && $c >= $p->{'created[lt]'};
        return 1;
    };
    @items = grep { $cr->($_) } @items;
    for my $k (qw(customer payment_intent subscription)) {
        next unless defined $p->{$k};
        @items = grep {
            my $v = $_->{$k};
            $v = $v->{id} if ref $v eq 'HASH';
            defined $v && $v eq $p->{$k}
        } @items;
    }
    if ($coll eq 'subscriptions') {
        my $s = $p->{status};
        @items = !defined $s ? grep { ($_->{status} // '') ne 'canceled' } @items
               : $s eq 'all' ? @items
               : grep { ($_->{status} // '') eq $s } @items;
    } elsif (defined $p->{status}) {
        @items = grep { ($_->{status} // '') eq $p->{status} } @items;
    }
    if ($coll eq 'events') {
        my @types = grep { defined } (ref $p->{'types[]'} ? @{ $p->{'types[]'} } : $p->{'types[]'}),
            (ref $p->{type} ? @{ $p->{type} } : $p->{type});
        for my $i (0 .. 19) {
            push @types, $p->{"types[$i]"} if defined $p->{"types[$i]"};
        }
        if (@types) {
            my @re = map { my $t = quotemeta $_; $t =~ s/\\\*/.*/g; qr/^$t$/ } @types;
            @items = grep { my $t = $_->{type} // ''; grep { $t =~ $_ } @re } @items;
        }
        if (defined(my $ds = $p->{delivery_success})) {
            my $want = $ds eq 'true' ? 1 : 0;
            @items = grep { ($_->{_delivery_success} // 1) == $want } @items;
        }
    }
    # newest first, as Stripe lists
    my $n = 0;
    my %pos = map { $_ => $n++ } map { "$_" } @items;
    return sort { ($b->{created} // 0) <=> ($a->{created} // 0)
                  || $pos{"$b"} <=> $pos{"$a"} } @items;
}

sub _api_stripe {
    my ($self, $req) = @_;
    my ($m, $r) = ($req->{method}, $req->{route} // '');
    my $st = $self->{state};
    return undef unless $m eq 'GET';
    if ($r =~ m{^/v1/checkout/sessions/([^/]+)/line_items$}) {
        my $id = $1;
        my ($s) = grep { $_->{id} eq $id } @{ $st->{objects}{'checkout/sessions'} };
        return _stripe_missing('checkout.session', $id, 'session')
            unless $s || $st->{line_items}{$id};
        return $self->_stripe_list($req, "/v1/checkout/sessions/$id/line_items",
                                   $st->{line_items}{$id} || [], 'line_item');
    }
    for my $coll (sort { length $b <=> length $a } keys %STRIPE_COLL) {
        if ($r eq "/v1/$coll") {
            my @items = $self->_stripe_filter($req, $coll, @{ $st->{objects}{$coll} });
            return $self->_stripe_list($req, "/v1/$coll", \@items, $STRIPE_COLL{$coll});
        }
        if ($r =~ m{^/v1/\Q$coll\E/([^/]+)$}) {
            my $id = $1;
            my ($o) = grep { $_->{id} eq $id } @{ $st->{objects}{$coll} };
            return _stripe_missing($STRIPE_COLL{$coll} =~ s/\./ /r, $id) unless $o;
            return { status => 200, body => _stripe_public($o) };
        }
    }
    return undef;
}

# ============================================================ webhook ===

sub _init_webhook {
    my ($self) = @_;
    $self->{state} = { deliveries => [] };
}

sub _seed_webhook { }

sub _auth_webhook { undef }

sub _api_webhook {
    my ($self, $req) = @_;
    return { status => 405, body => { error => 'POST only' },
             headers => { Allow => 'POST' } } unless $req->{method} eq 'POST';
    my $h = $req->{headers}{'x-stripe-sync-signature'};
    my ($valid, $why) = (0, '');
    if (!defined $h) {
        $why = 'no X-Stripe-Sync-Signature';
    } else {
        my ($t, @v1);
        for my $part (split /,/, $h) {
            my ($k, $v) = split /=/, $part, 2;
            next unless defined $v;
            $t = $v if $k eq 't';
            push @v1, $v if $k eq 'v1';
        }
        my $want = defined $t ? hmac_sha256_hex("$t.$req->{body}", $self->{secret}) : '';
        if (!defined $t || $t !~ /^\d+$/) {
            $why = 'no timestamp';
        } elsif (!@v1) {
            $why = 'no v1 signature';
        } elsif (!grep { $_ eq $want } @v1) {
            $why = 'no v1 matches';
        } elsif (abs(time - $t) > $self->{tolerance}) {
            $why = 'timestamp outside tolerance';
        } else {
            $valid = 1;
        }
    }
    $req->{extra} = { sig_valid => $valid, sig_error => $why };
    push @{ $self->{state}{deliveries} }, { seq => $req->{seq}, valid => $valid,
        event => $req->{headers}{'x-stripe-sync-event'} };
    if (!$valid && !$self->{accept_invalid}) {
        return { status => 400, body => { error => "bad signature: $why" } };
    }
    return { status => $self->{status} // 200, body => { ok => _true } };
}

# ============================================================= stack ===

package StripeSync::Fake::Stack;

# Redis + nginx with the module, for end-to-end consumer tests:
#
#   my $s = StripeSync::Fake::Stack->new;           # prefix, secret options
#   my $kit = StripeSync::Fake->new(api => 'kit', ...);
#   my $c = $s->consumer(provider => $kit, stripe => $stripe_fake,
#                        rules => [ {...} ], preset => 'convertkit', ...);
#   my $id = $s->send('invoice.paid', $s->invoice(...));   # signed, via nginx
#   $s->idle;                   # queue, retries and processing lists empty
#   $s->dead, $s->customers, $s->stats, $s->job($event_id), $s->key('queue')
#
# consumer(%o): the config is built from defaults (heartbeat 1, retry
# base_delay 1, max_delay 2, max_attempts 5, concurrency 4, timeouts 5 s)
# with provider/stripe groups made from fakes; other keys of %o go into
# the config as they are (libconfig() syntax); name, args, env, log as
# start_consumer's. Restart one with $s->consumer(%same, log => $c->{log}).

use strict;
use warnings;

use Time::HiRes qw(time sleep);

sub new {
    my ($class, %o) = @_;
    my $self = bless { prefix => 'stripe_sync', secret => 'whsec_stack_0123456789',
                       %o }, $class;
    $self->{redis} = StripeSync::Test::start_redis();
    my $port = $self->{redis}->port;
    $self->{nginx} = StripeSync::Test::start_nginx(
        http => "stripe_sync_redis 127.0.0.1:$port; stripe_sync_prefix $self->{prefix};",
        conf => "location = /hook { stripe_sync; stripe_sync_secret $self->{secret}; }");
    $self->{dir} = StripeSync::Test::temp_dir('stack');
    return $self;
}

sub redis  { $_[0]{redis} }
sub nginx  { $_[0]{nginx} }
sub prefix { $_[0]{prefix} }
sub key    { "{$_[0]{prefix}}:$_[1]" }

# Posts a signed event through nginx; returns the event id (dies unless
# 200). %o: id, created, livemode, extra (top-level members), expect =>
# 'duplicate' | 'ignored' | 'queued' (default queued).
sub send {
    my ($self, $type, $object, %o) = @_;
    my $id = $o{id} // StripeSync::Test::unique_id('evt');
    my $body = StripeSync::Test::make_event(type => $type, object => $object,
        id => $id, created => $o{created}, livemode => $o{livemode} // 1,
        extra => $o{extra});
    my $r = StripeSync::Test::post_event($self->{nginx}->url('/hook'), $body,
                                         secret => $self->{secret});
    my $want = $o{expect} // 'queued';
    my $j = $r->{json} || {};
    my $got = $r->{status} != 200 ? "HTTP $r->{status}"
            : $j->{duplicate} ? 'duplicate' : $j->{ignored} ? 'ignored' : 'queued';
    die "send $type: $got, not $want: $r->{status} " . ($r->{content} // '') . "\n"
        unless $got eq $want;
    return $id;
}

sub _secret {
    my ($self, $name, $content) = @_;
    return StripeSync::Test::write_secret($self->{dir}, $name, "$content\n");
}

# The provider group for a fake.
sub provider_conf {
    my ($self, $f, %x) = @_;
    my $api = $f->api;
    my %p;
    if ($api eq 'kit') {
        %p = (type => 'kit', api_base => $f->base,
              api_key_file => $self->_secret('kit.key', $f->key));
        $p{oauth_token_file} = $self->_secret('kit.oauth', $f->oauth)
            unless $x{no_oauth};
        delete $p{api_key_file} if $x{oauth_only};
    } elsif ($api eq 'activecampaign') {
        %p = (type => 'activecampaign', api_base => $f->url,
              api_key_file => $self->_secret('ac.key', $f->key));
    } elsif ($api eq 'klaviyo') {
        %p = (type => 'klaviyo', api_base => $f->base,
              api_key_file => $self->_secret('klaviyo.key', $f->key));
    } elsif ($api eq 'webhook') {
        %p = (type => 'webhook', url => $f->url('/deliver'),
              secret_file => $self->_secret('webhook.secret', $f->secret));
    } else {
        die "provider_conf: $api is not a provider\n";
    }
    delete $x{$_} for qw(no_oauth oauth_only);
    return { %p, timeout => 5, %x };
}

sub config {
    my ($self, %o) = @_;
    my %c = (
        redis => '127.0.0.1:' . $self->{redis}->port,
        prefix => $self->{prefix},
        heartbeat => 1,
        concurrency => 4,
        shutdown_grace => 5,
        retry => { max_attempts => 5, base_delay => 1, max_delay => 2 },
    );
    my $prov = delete $o{provider};
    my $px = delete $o{provider_extra} || {};
    if (ref $prov && eval { $prov->isa('StripeSync::Fake') }) {
        $c{provider} = $self->provider_conf($prov, %$px);
    } elsif ($prov) {
        $c{provider} = $prov;
    }
    my $st = delete $o{stripe};
    if (ref $st && eval { $st->isa('StripeSync::Fake') }) {
        $c{stripe} = { api_base => $st->url, timeout => 5,
                       api_key_file => $self->_secret('stripe.key', $st->key) };
    } elsif ($st) {
        $c{stripe} = $st;
    }
    for my $k (keys %o) {
        if (ref $o{$k} eq 'HASH' && ref $c{$k} eq 'HASH') {
            $c{$k} = { %{ $c{$k} }, %{ $o{$k} } };
        } else {
            $c{$k} = $o{$k};
        }
    }
    return \%c;
}

sub consumer {
    my ($self, %o) = @_;
    my %run = map { $_ => delete $o{$_} } grep { exists $o{$_} }
              qw(name args env log dir);
    my $conf = $self->config(%o);
    my $p = StripeSync::Test::start_consumer(config => $conf,
        dir => $run{dir} // $self->{dir}, %run);
    $p->{config} = $conf;
    return $p;
}

sub _llen { $_[0]{redis}->cmd('LLEN', $_[1]) // 0 }

# Nothing queued, waiting for a retry, held in a processing list or parked.
sub is_idle {
    my ($self, %o) = @_;
    my $r = $self->{redis};
    return 0 if $self->_llen($self->key('queue'));
    return 0 if !$o{ignore_retry} && $r->cmd('ZCARD', $self->key('retry'));
    my $keys = $r->cmd('KEYS', $self->key('processing:*')) || [];
    for my $k (@$keys) {
        return 0 if $self->_llen($k);
    }
    # jobs parked behind an earlier job of their customer (a zset of them)
    return 0 if $r->cmd('ZCARD', $self->key('parked'));
    return 1;
}

sub idle {
    my ($self, $timeout, %o) = @_;
    # two looks in a row, 0.2 s apart: a job between lists is not idle
    return StripeSync::Test::wait_until(sub {
        $self->is_idle(%o) && do { sleep 0.2; $self->is_idle(%o) };
    }, $timeout // StripeSync::Test::tmo(15), 0.1);
}

sub dead {
    my ($self) = @_;
    my $l = $self->{redis}->cmd('LRANGE', $self->key('dead'), 0, -1) || [];
    return [ map { StripeSync::Test::json_decode($_) } @$l ];
}

sub customers {
    my ($self) = @_;
    my $h = $self->{redis}->hgetall($self->key('customers'));
    return { map { $_ => StripeSync::Test::json_decode($h->{$_}) } keys %$h };
}

sub stats { $_[0]{redis}->hgetall($_[0]->key('stats')) }

sub job { $_[0]{redis}->hgetall($_[0]->key("job:$_[1]")) }

# ---- Stripe objects for events (basil shapes) ----

sub _items {
    my (@items) = @_;
    return { object => 'list', has_more => JSON::PP::false,
             data => [ map { {
        id => "il_$_->{price}", object => 'line_item', amount => $_->{amount},
        currency => 'usd', description => $_->{description} // "1 x $_->{product}",
        quantity => $_->{quantity} // 1,
        pricing => { type => 'price_details', price_details => {
            price => $_->{price}, product => $_->{product} } },
    } } @items ] };
}

# invoice(id, customer, email, name, amount, attempt_count, billing_reason,
#         subscription, status, items => [{price, product, amount, ...}])
sub invoice {
    my ($self, %o) = @_;
    my $amount = $o{amount} // 2900;
    my @items = @{ $o{items} || [ { price => 'price_PRO', product => 'prod_PRO',
                                    amount => $amount } ] };
    return {
        id => $o{id} // StripeSync::Test::unique_id('in'), object => 'invoice',
        customer => $o{customer} // 'cus_A',
        (defined $o{email} ? (customer_email => $o{email}) : ()),
        (defined $o{name} ? (customer_name => $o{name}) : ()),
        amount_due => $amount, amount_paid => $o{paid} // $amount,
        amount_remaining => 0, currency => $o{currency} // 'usd',
        attempt_count => $o{attempt_count} // 1,
        billing_reason => $o{billing_reason} // 'subscription_cycle',
        status => $o{status} // 'paid', created => int(time),
        parent => { type => 'subscription_details', subscription_details => {
            subscription => $o{subscription} // 'sub_A' } },
        lines => _items(@items),
        metadata => {},
    };
}

# subscription(id, customer, status, price, product, amount, start_date)
sub subscription {
    my ($self, %o) = @_;
    return {
        id => $o{id} // 'sub_A', object => 'subscription',
        customer => $o{customer} // 'cus_A', status => $o{status} // 'active',
        currency => 'usd', start_date => $o{start_date} // int(time) - 86400,
        created => $o{start_date} // int(time) - 86400,
        cancel_at_period_end => JSON::PP::false,
        items => { object => 'list', has_more => JSON::PP::false, data => [ {
            id => 'si_1', object => 'subscription_item', quantity => 1,
            current_period_end => int(time) + 86400 * 30,
            price => { id => $o{price} // 'price_PRO', object => 'price',
                       product => $o{product} // 'prod_PRO',
                       unit_amount => $o{amount} // 2900, currency => 'usd' } } ] },
        metadata => {},
        %{ $o{extra} || {} },
    };
}

# checkout_session(id, customer, email, name, amount, mode)
sub checkout_session {
    my ($self, %o) = @_;
    return {
        id => $o{id} // StripeSync::Test::unique_id('cs'), object => 'checkout.session',
        mode => $o{mode} // 'payment', payment_status => 'paid', status => 'complete',
        customer => $o{customer} // 'cus_A',
        customer_details => { email => $o{email} // 'ada@example.org',
                              name => $o{name} // 'Ada Lovelace' },
        amount_total => $o{amount} // 9900, amount_subtotal => $o{amount} // 9900,
        currency => 'usd', created => int(time), metadata => {},
    };
}

# a Checkout line item, as GET /v1/checkout/sessions/{id}/line_items lists it
sub line_item {
    my ($self, %o) = @_;
    return { id => $o{id} // StripeSync::Test::unique_id('li'), object => 'item',
        amount_subtotal => $o{amount} // 9900, amount_total => $o{amount} // 9900,
        currency => 'usd', description => $o{description} // 'Course',
        quantity => $o{quantity} // 1,
        price => { id => $o{price} // 'price_COURSE', object => 'price',
                   product => $o{product} // 'prod_COURSE',
                   unit_amount => $o{amount} // 9900, currency => 'usd' } };
}

1;
