# Hostile input at the webhook endpoint (issue 6): slow bodies, oversized
# and malformed headers, bodies that are not UTF-8 or hold NUL bytes, a JSON
# nesting bomb, replays, and the same event id with another body. Each is
# refused with a clear status, nothing is queued, and the worker keeps
# answering everyone else.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time sleep);
use StripeSync::Test;

require_module();

my $SECRET = 'whsec_hostile_0123456789abcdef';

my $redis = start_redis();
my $ng = start_nginx(
    http => "stripe_sync_redis 127.0.0.1:$redis->{port};
             log_format hostile '\$status|\$stripe_sync_result|'
                                '\$stripe_sync_event_id|\$request_uri';",
    conf => "
        access_log %%PREFIX%%/hostile.log hostile;
        client_body_timeout 2s;
        client_body_buffer_size 16k;
        client_max_body_size 1m;
        location = /hook {
            stripe_sync;
            stripe_sync_secret $SECRET;
            stripe_sync_tolerance 300s;
        }",
);

my $URL = $ng->url('/hook');
my @WORKERS = $ng->worker_pids;

# ------------------------------------------------------------- helpers ---

sub invoice {
    my (%o) = @_;
    return {
        id => $o{id} // unique_id('in'), object => 'invoice',
        customer => $o{customer} // unique_id('cus'),
        customer_email => $o{email} // 'ada@example.org',
        customer_name => $o{name} // 'Ada Lovelace',
        billing_reason => 'subscription_cycle', attempt_count => 1,
        amount_paid => $o{amount} // 24900, amount_due => $o{amount} // 24900,
        currency => 'usd', status => 'paid',
    };
}

sub event {
    my (%o) = @_;
    my $id = $o{id} // unique_id('evt');
    return (make_event(type => 'invoice.paid', id => $id,
                       object => invoice(%o, id => $o{invoice})), $id);
}

sub seen { $redis->cmd('EXISTS', $redis->key("seen:$_[0]")) }

sub workers_alive {
    my ($what) = @_;
    is_deeply([ $ng->worker_pids ], \@WORKERS, "$what: the worker is the same process")
        or diag $ng->error_log_tail(20);
}

# One quick, valid request: answered 200 within $max seconds.
sub prompt {
    my ($what, $max) = @_;
    my ($b) = event();
    my $r = post_event($URL, $b, secret => $SECRET, timeout => tmo(5));
    ok($r->{status} == 200 && $r->{elapsed} < tmo($max // 1),
       sprintf('%s: a valid request is answered %d in %.3f s', $what,
               $r->{status}, $r->{elapsed}))
        or diag_response($r, $ng);
    return $r;
}

# A request refused with 400 and a reason matching $want; nothing queued.
sub refused {
    my ($what, $r, $want, $id) = @_;
    is($r->{status}, 400, "$what: 400") or diag_response($r, $ng);
    my $j = $r->{json} || res_json($r) || {};
    like($j->{error} // '', $want, "$what: reason \"" . ($j->{error} // '') . '"');
    is($redis->queue_len, 0, "$what: nothing queued");
    is(seen($id), 0, "$what: the id is not marked seen") if defined $id;
}

sub access_lines { grep { length } split /\n/, $ng->access_log('hostile.log') }

# ------------------------------------------------------- slow bodies ---

subtest 'slow bodies are cut by client_body_timeout; others answered meanwhile' => sub {
    my $n = 20;
    my ($body) = event();
    my $len = length $body;
    my $head = "POST /hook?slow=1 HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Type: application/json\r\nContent-Length: $len\r\n"
        . 'Stripe-Signature: ' . sign_header($body, $SECRET) . "\r\n\r\n";
    my @socks;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $ng->port, Proto => 'tcp', Timeout => 5) or die "connect: $!";
        binmode $s;
        syswrite $s, $head . substr($body, 0, 100);
        push @socks, $s;
    }
    # a byte a second for 3 s: each read restarts nginx's per-read timer,
    # so they are still open; everyone else is answered promptly meanwhile
    my $t0 = time;
    my $i = 100;
    my $last;
    for my $tick (1 .. 3) {
        syswrite $_, substr($body, $i++, 1) for @socks;
        $last = time;
        prompt("during the trickle ($tick s)");
        sleep 1 - (time - $last) if time - $last < 1;
    }
    my $open = grep { !IO::Select->new($_)->can_read(0) } @socks;
    is($open, $n, "$n trickling connections still open after 3+ s "
                  . '(client_body_timeout is per read, not for the whole body)');

    # then they stop: cut about 2 s after their last byte, without an answer
    my %closed;
    wait_until(sub {
        for my $k (0 .. $#socks) {
            next if $closed{$k};
            next unless IO::Select->new($socks[$k])->can_read(0);
            my $n = sysread $socks[$k], my $buf, 4096;
            $closed{$k} = { at => time - $last, data => $buf // '' } if !$n;
        }
        return keys %closed == $n;
    }, tmo(8), 0.05);
    is(scalar keys %closed, $n, "all $n slow requests were cut by the server");
    my @at = sort { $a <=> $b } map { $_->{at} } values %closed;
    ok(@at && $at[0] >= 1.8 && $at[-1] < tmo(4.5),
       sprintf('cut %.1f to %.1f s after their last byte (client_body_timeout 2s)',
               $at[0] // -1, $at[-1] // -1));
    is(scalar(grep { length $_->{data} } values %closed), 0,
       'no answer is sent to a timed-out body (nginx closes: 408 in the log)');
    is(scalar(grep { /^408\|.*slow=1$/ } access_lines()), $n, "$n 408 lines in the access log");
    close $_ for @socks;
    is($redis->queue_len, scalar(grep { /^200\|queued\|/ } access_lines()),
       'only the prompt requests were queued');
    $redis->cmd('DEL', $redis->key('queue'));
    prompt('after the cut');
    $redis->cmd('DEL', $redis->key('queue'));
    workers_alive('slow bodies');
};

# ---------------------------------------------------- oversized headers ---

subtest 'oversized headers: nginx answers 400, no crash' => sub {
    my ($body, $id) = event();
    my $sig = sign_header($body, $SECRET);
    # one header line over large_client_header_buffers (4 x 8k)
    my ($r) = raw_http(port => $ng->port, data => raw_post('/hook?big=line', $body,
        secret => $SECRET, headers => { 'X-Padding' => 'a' x 9000 }));
    is($r->{status}, 400, 'a 9000-byte header line -> 400') or diag explain $r;
    like($r->{content} // '', qr/Request Header Or Cookie Too Large/i,
         'nginx says why: Request Header Or Cookie Too Large');
    # a Stripe-Signature of 20 KB
    ($r) = raw_http(port => $ng->port, data => raw_post('/hook?big=sig', $body,
        headers => { 'Stripe-Signature' => "$sig," . join(',', ('v0=' . 'a' x 64) x 300) }));
    is($r->{status}, 400, 'a 20 KB Stripe-Signature -> 400');
    # headers adding up to more than the four buffers
    my %many = map { ("X-Pad-$_" => 'b' x 7000) } 1 .. 6;
    ($r) = raw_http(port => $ng->port, data => raw_post('/hook?big=many', $body,
        secret => $SECRET, headers => \%many));
    is($r->{status}, 400, '42 KB of headers -> 400');
    # logged when nginx lets the connection go (after a lingering close)
    my @l;
    wait_until(sub { @l = grep { /big=/ } access_lines(); @l == 3 }, tmo(5));
    is(scalar(grep { /^400\|-\|/ } @l), 3, 'logged as 400, before the module ran')
        or diag join "\n", @l;
    is(scalar(() = $ng->error_log =~ /client sent too long header line/g), 3,
       'the error log says: client sent too long header line');
    is($redis->queue_len, 0, 'nothing queued');
    is(seen($id), 0, 'not marked seen');
    prompt('after oversized headers');
    $redis->cmd('DEL', $redis->key('queue'));
    workers_alive('oversized headers');
};

# ------------------------------------------------- Stripe-Signature abuse ---

subtest 'Stripe-Signature with 100 v1 parts, or 17: 400 with a precise reason' => sub {
    my ($body, $id) = event();
    my $t = int time;
    my $good = sign($body, $SECRET, $t);
    my @junk = map { sprintf '%064x', $_ } 1 .. 99;
    # 100 v1 values: 6.8 KB, past the 4096-byte bound of the parser
    my $r = post_event($URL, $body,
        signature => "t=$t," . join(',', map { "v1=$_" } @junk, $good));
    refused('100 v1 parts', $r, qr/^Stripe-Signature header is longer than 4096 bytes$/, $id);
    # 17 v1 values fit in 4096 bytes: the count itself is refused
    $r = post_event($URL, $body,
        signature => "t=$t," . join(',', map { "v1=$_" } @junk[0 .. 15], $good));
    refused('17 v1 parts', $r, qr/^Stripe-Signature has more than 16 v1 values$/, $id);
    # 16 are fine when one of them is right
    $r = post_event($URL, $body,
        signature => "t=$t," . join(',', map { "v1=$_" } @junk[0 .. 14], $good));
    is($r->{status}, 200, '16 v1 parts, the last one right: accepted')
        or diag_response($r, $ng);
    $redis->cmd('DEL', $redis->key('queue'));
    workers_alive('v1 parts');
};

subtest 'NUL and control bytes in Stripe-Signature: 400' => sub {
    my ($body, $id) = event();
    my $t = int time;
    my $v1 = sign($body, $SECRET, $t);
    my @cases = (
        [ 'NUL in t',               "t=$t\0,v1=$v1",     qr/invalid header/ ],
        [ 'NUL in v1',              "t=$t,v1=\0$v1",     qr/invalid header/ ],
        [ 'control byte in t',      "t=$t\x01,v1=$v1",   qr/^Stripe-Signature t= timestamp is not a decimal integer$/ ],
        [ 'control byte after v1',  "t=$t,v1=$v1\x1f",   qr/^Stripe-Signature v1 value is not 64 hex digits$/ ],
        [ 'control byte as a key',  "t=$t,\x02=$v1",     qr/^Stripe-Signature has no v1 signature$/ ],
        [ 'DEL inside v1',          "t=$t,v1=\x7f$v1",   qr/^Stripe-Signature v1 value is not 64 hex digits$/ ],
        [ 'escape sequence',        "t=$t,v1=$v1\e[2J",  qr/^Stripe-Signature v1 value is not 64 hex digits$/ ],
    );
    for my $c (@cases) {
        my ($what, $sig, $want) = @$c;
        my ($r) = raw_http(port => $ng->port, data => raw_post("/hook?ctl=1", $body,
            headers => { 'Stripe-Signature' => $sig }));
        is($r->{status}, 400, "$what: 400") or diag explain $r;
        if ($want =~ /invalid header/) {
            # nginx itself refuses a header line holding NUL
            like($ng->error_log, qr/client sent invalid header line/,
                 "$what: nginx refused the header line");
        } else {
            like($r->{json}{error} // '', $want, "$what: \"" . ($r->{json}{error} // '') . '"');
        }
    }
    is($redis->queue_len, 0, 'nothing queued');
    is(seen($id), 0, 'not marked seen');
    unlike($ng->error_log, qr/\x01|\x1f|\x02|\x7f|\e/, 'no raw control byte reached the error log');
    workers_alive('control bytes');
};

# ---------------------------------------------------- hostile bodies ---

subtest 'bodies that are not UTF-8 or hold NUL bytes (validly signed): 400' => sub {
    my $id = unique_id('evt');
    my ($tmpl) = event(id => $id, name => 'NAME_HERE');
    my @cases = (
        [ 'invalid UTF-8 in a string',  "Ada \xc3\x28 Lovelace", qr/^body has a string that is not valid UTF-8: incomplete sequence at byte \d+$/ ],
        [ 'a lone continuation byte',   "Ada \x80",             qr/^body has a string that is not valid UTF-8: unexpected continuation byte 0x80 at byte \d+$/ ],
        [ 'an overlong form',           "Ada \xc0\xaf",         qr/^body has a string that is not valid UTF-8: overlong form at byte \d+$/ ],
        [ 'a UTF-16 surrogate',         "Ada \xed\xa0\x80",     qr/^body has a string that is not valid UTF-8: UTF-16 surrogate at byte \d+$/ ],
        [ 'beyond U+10FFFF',            "Ada \xf4\x90\x80\x80", qr/^body has a string that is not valid UTF-8: code point past U\+10FFFF at byte \d+$/ ],
        [ 'a raw NUL in a string',      "Ada\0Lovelace",        qr/^body contains a NUL byte$/ ],
        [ 'a raw control byte',         "Ada\x01Lovelace",      qr/^body is not JSON: unescaped control character 0x01 in a string at byte \d+$/ ],
    );
    for my $c (@cases) {
        my ($what, $name, $want) = @$c;
        (my $b = $tmpl) =~ s/NAME_HERE/$name/;
        refused($what, post_event($URL, $b, secret => $SECRET), $want, $id);
    }
    my ($b) = event(id => $id);
    refused('a NUL after the JSON', post_event($URL, "$b\0", secret => $SECRET),
            qr/^body contains a NUL byte$/, $id);
    refused('a NUL before the JSON', post_event($URL, "\0$b", secret => $SECRET),
            qr/^body contains a NUL byte$/, $id);
    refused('invalid UTF-8 outside strings', post_event($URL, "$b\xff", secret => $SECRET),
            qr/^body is not JSON: trailing garbage at byte ${\ length $b}$/, $id);
    # yajl alone took a value followed by an unterminated string
    refused('an unterminated string after the JSON', post_event($URL, "$b\"junk", secret => $SECRET),
            qr/^body is not JSON: trailing garbage at byte ${\ length $b}$/, $id);
    (my $k = $b) =~ s/"customer_name"/"customer_\xc0\xafname"/;
    refused('an overlong form in a key', post_event($URL, $k, secret => $SECRET),
            qr/^body has a string that is not valid UTF-8: overlong form at byte ${\ index($k, "\xc0")}$/, $id);
    (my $nulid = $b) =~ s/"id":"\Q$id\E"/"id":"evt_\\u0000$id"/;
    isnt($nulid, $b, 'an event id holding \u0000');
    refused('an escaped NUL in the event id', post_event($URL, $nulid, secret => $SECRET),
            qr/^event "id" is not 1 to 255 printable characters$/, $id);
    workers_alive('hostile bodies');
};

subtest 'a nesting bomb of 100,000 [ (validly signed): 400 nesting, fast' => sub {
    my $bomb = '[' x 100_000;
    my $r = post_event($URL, $bomb, secret => $SECRET);
    refused('100,000 [', $r, qr/nesting/);
    is($r->{json}{error}, 'JSON nesting deeper than 64 levels at byte 64', 'the reason names the limit');
    ok($r->{elapsed} < tmo(1), sprintf('answered in %.3f s', $r->{elapsed}));
    my $objs = '{"a":' x 50_000;
    $r = post_event($URL, $objs, secret => $SECRET);
    refused('50,000 {"a":', $r, qr/nesting/);
    ok($r->{elapsed} < tmo(1), sprintf('answered in %.3f s', $r->{elapsed}));
    # balanced, inside an otherwise valid event
    my ($b) = event();
    (my $deep = $b) =~ s/^\{/{"deep":${\('[' x 70)}${\(']' x 70)},/;
    $r = post_event($URL, $deep, secret => $SECRET);
    refused('a balanced 70-deep member', $r, qr/nesting/);
    prompt('after the bombs');
    $redis->cmd('DEL', $redis->key('queue'));
    workers_alive('nesting bombs');
};

# ------------------------------------------------------------- replays ---

subtest 'a replay after the tolerance: 400; within it: duplicate' => sub {
    my ($body, $id) = event();
    my $old = int(time) - 400;
    my $captured = sign_header($body, $SECRET, $old);
    my $r = post_event($URL, $body, signature => $captured);
    refused('signed 400 s ago (tolerance 300 s)', $r,
            qr/^Stripe-Signature timestamp is outside the tolerance$/, $id);
    # the same request captured now and replayed at once: deduped
    my $now = sign_header($body, $SECRET);
    $r = post_event($URL, $body, signature => $now);
    is($r->{status}, 200, 'the genuine delivery: 200');
    is_deeply($r->{json}, { received => 1 }, 'queued');
    $r = post_event($URL, $body, signature => $now);
    is_deeply([ $r->{status}, $r->{json} ], [ 200, { received => 1, duplicate => 1 } ],
              'the replay within the tolerance: duplicate');
    is($redis->queue_len, 1, 'queued once');
    $redis->cmd('DEL', $redis->key('queue'));
};

subtest 'the same event id with another body: the first wins' => sub {
    my $id = unique_id('evt');
    my $cus = unique_id('cus');
    my ($first) = event(id => $id, customer => $cus, amount => 1000,
                        email => 'first@example.org');
    my ($second) = event(id => $id, customer => $cus, amount => 999_999,
                         email => 'second@example.org');
    isnt($first, $second, 'two different bodies');
    my $r = post_event($URL, $first, secret => $SECRET);
    is_deeply([ $r->{status}, $r->{json} ], [ 200, { received => 1 } ], 'first: queued');
    $r = post_event($URL, $second, secret => $SECRET);
    is_deeply([ $r->{status}, $r->{json} ], [ 200, { received => 1, duplicate => 1 } ],
              'second, validly signed: answered duplicate');
    my $q = $redis->queue;
    is(scalar @$q, 1, 'one record queued');
    is($q->[0]{amount}, 1000, 'the queue holds the first body');
    is($q->[0]{customer}{email}, 'first@example.org', 'with its email');
    my $c = json_decode($redis->cmd('HGET', $redis->key('customers'), $cus) // '{}');
    is($c->{email}, 'first@example.org', 'the customer map keeps the first email');
    $redis->cmd('DEL', $redis->key('queue'));
};

prompt('at the end');
workers_alive('at the end');
my @alerts = $ng->alerts;
is_deeply(\@alerts, [], 'no [alert], [crit] or [emerg] in the error log');

finish();
