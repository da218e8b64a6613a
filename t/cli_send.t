# stripe-sync send (SPEC 6, issue 5): events signed as Stripe signs them,
# accepted by the module (and what it queued is what was asked for),
# refused with a wrong secret; a load run of 200 events, 8 in flight, all
# queued, the summary's numbers right; fixture files sent; usage errors.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX ();
use Test::More;
use StripeSync::Test;
use StripeSync::Fake;

require_module();
require_tool();

my $s = StripeSync::Fake::Stack->new;
my $r = $s->redis;
my $dir = temp_dir('send');
my $url = $s->nginx->url('/hook');
my $secret_file = write_secret($dir, 'whsec',
    "# the endpoint's signing secret\n\n$s->{secret}\n");
my $wrong_file = write_secret($dir, 'wrong', "whsec_not_the_right_one_42\n");
my $fixtures = repo_root() . '/t/fixtures/stripe';

# (exit code, stdout, stderr)
sub tool3 {
    my (@args) = @_;
    my $d = temp_dir('out');
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', "$d/out" or POSIX::_exit(126);
        open STDERR, '>', "$d/err" or POSIX::_exit(126);
        exec(tool_path(), @args) or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    return ($? >> 8, slurp("$d/out") // '', slurp("$d/err") // '');
}

sub send_tool { tool3('send', '--url', $url, @_) }

sub queued_since {
    my ($n) = @_;
    my $q = $r->queue;
    return [ @$q[$n .. $#$q] ];
}

subtest 'a generated invoice.paid: 200, queued as asked' => sub {
    my $n = $r->queue_len;
    my ($rc, $out, $err) = send_tool('--secret-file', $secret_file,
        '--type', 'invoice.paid', '--email', 'ada@example.org',
        '--price', 'price_COURSE', '--customer', 'cus_ADA', '--amount', '4900');
    is($rc, 0, 'exit 0') or diag "$out$err";
    like($out, qr/^(evt_1\w{23}) invoice\.paid: HTTP 200 \{"received":true\}\n\z/,
         'the id, the type, the status and the body');
    my ($id) = $out =~ /^(\S+)/;
    my $q = queued_since($n);
    is(scalar @$q, 1, 'one record queued');
    my $rec = $q->[0];
    is($rec->{id}, $id, 'the event id printed');
    is($rec->{type}, 'invoice.paid', 'type');
    is($rec->{action}, 'purchase', 'action purchase (billing_reason subscription_create)');
    is($rec->{customer}{email}, 'ada@example.org', 'email');
    is($rec->{customer}{id}, 'cus_ADA', 'customer');
    is($rec->{items}[0]{price}, 'price_COURSE', 'price');
    is($rec->{amount}, 4900, 'amount');
    is($rec->{api_version}, '2025-03-31.basil', 'basil');
    ok(!$rec->{livemode}, 'test mode');
    ok(abs($rec->{created} - time) < 60, 'created now');
    unlike("$out$err", qr/\Q$s->{secret}\E/, 'the secret is not printed');
};

subtest 'every generated type the module handles is accepted' => sub {
    my ($rc, $out) = tool3('send', '--list-types');
    is($rc, 0, '--list-types');
    my @types = split /\n/, $out;
    ok(@types >= 20, scalar(@types) . ' types');
    for my $t (@types) {
        my ($rc2, $o2, $e2) = send_tool('--secret-file', $secret_file, '--type', $t,
                                        '--livemode');
        ok($rc2 == 0 && $o2 =~ /: HTTP 200 \{"received":true\}$/, "$t: queued")
            or diag "$o2$e2";
    }
};

subtest 'a wrong secret: 400, exit 1' => sub {
    my $n = $r->queue_len;
    my ($rc, $out, $err) = send_tool('--secret-file', $wrong_file,
        '--type', 'customer.created');
    is($rc, 1, 'exit 1');
    like($out, qr/customer\.created: HTTP 400 \{"error":"no v1 signature matches any configured secret"\}/,
         'the status and the module\'s reason') or diag "$out$err";
    is($r->queue_len, $n, 'nothing queued');
    unlike("$out$err", qr/whsec_not_the_right_one_42|\Q$s->{secret}\E/,
           'no secret in the output');
};

subtest 'load: 200 events, 8 in flight' => sub {
    my $n = $r->queue_len;
    my ($rc, $out, $err) = send_tool('--secret-file', $secret_file,
        '--type', 'invoice.paid', '--count', 200, '--concurrency', 8);
    is($rc, 0, 'exit 0') or diag "$out$err";
    like($out, qr/^sent: 200 in \d+\.\d{3} s, [\d.]+ requests\/s$/m, 'sent 200');
    like($out, qr/^2xx: 200 \(queued 200, duplicate 0, ignored 0\)$/m, 'all queued');
    like($out, qr/^non-2xx: 0$/m, 'no non-2xx');
    like($out, qr/^errors: 0$/m, 'no errors');
    my ($p50, $p99, $max) = $out =~ /^latency: p50 ([\d.]+) ms, p90 [\d.]+ ms, p99 ([\d.]+) ms, max ([\d.]+) ms$/m;
    ok(defined $p50 && $p50 <= $p99 && $p99 <= $max, "latency p50 $p50 <= p99 $p99 <= max $max")
        or diag $out;
    my ($secs, $rate) = $out =~ /^sent: 200 in ([\d.]+) s, ([\d.]+) requests/m;
    ok(abs($rate - 200 / $secs) <= 0.05 * $rate + 0.1, "requests/s $rate = 200 / $secs s (to the rounding)");
    is($r->queue_len - $n, 200, '200 more records in the queue');
    my $q = queued_since($n);
    my %ids = map { $_->{id} => 1 } @$q;
    is(scalar keys %ids, 200, '200 distinct event ids');
    my %inv = map { $_->{object}{id} => 1 } @$q;
    is(scalar keys %inv, 200, '200 distinct invoices (no fact dedupe)');
    is(scalar(grep { $_->{action} eq 'purchase' } @$q), 200, 'each a purchase');
};

subtest 'load with a wrong secret: non-2xx by status, exit 1' => sub {
    my ($rc, $out, $err) = send_tool('--secret-file', $wrong_file,
        '--type', 'charge.refunded', '--count', 5, '--concurrency', 2);
    is($rc, 1, 'exit 1');
    like($out, qr/^2xx: 0 /m, 'no 2xx');
    like($out, qr/^non-2xx: 5 \(400 x5 \{"error":"no v1 signature matches any configured secret"\}\)$/m,
         'five 400s, with the first body') or diag $out;
};

subtest 'a fixture file: event data, the type from its name' => sub {
    my $f = "$fixtures/event-data/invoice.payment_failed.data.json";
    my $n = $r->queue_len;
    my ($rc, $out, $err) = send_tool('--secret-file', $secret_file, $f);
    is($rc, 0, 'exit 0') or diag "$out$err";
    like($out, qr/^evt_\w+ invoice\.payment_failed: HTTP 200 \{"received":true\}$/,
         'queued');
    my ($rec) = @{ queued_since($n) };
    is($rec->{type}, 'invoice.payment_failed', 'type');
    is($rec->{action}, 'payment_failed', 'action');
    is($rec->{customer}{email}, 'customer@example.org', 'the fixture\'s email');
    is($rec->{items}[0]{price}, 'price_1234', 'the fixture\'s price');

    ($rc, $out) = send_tool('--secret-file', $secret_file, $f);
    is($rc, 0, 'again: exit 0 (a 200)');
    like($out, qr/HTTP 200 \{"received":true,"duplicate":true\}$/,
         'a new event id, but the same fact: duplicate');
    is($r->queue_len, $n + 1, 'not queued twice');

    my $sub = "$fixtures/event-data/subscription.deleted.data.json";
    ($rc, $out) = send_tool('--secret-file', $secret_file, $sub);
    like($out, qr/customer\.subscription\.deleted: HTTP 200 \{"received":true\}$/,
         'subscription.deleted.data.json is customer.subscription.deleted') or diag $out;

    my $obj = "$fixtures/objects/resource.customer.json";
    ($rc, $out, $err) = send_tool('--secret-file', $secret_file, $obj);
    isnt($rc, 0, 'a bare object without --type is refused');
    like($err, qr/--type/, "the error says to give --type: $err");
    ($rc, $out) = send_tool('--secret-file', $secret_file, '--type', 'customer.updated', $obj);
    like($out, qr/customer\.updated: HTTP 200 /, 'with --type: wrapped and accepted') or diag $out;
};

subtest 'a complete event file: sent byte for byte, its own id' => sub {
    my $id = unique_id('evt');
    my $body = make_event(type => 'customer.created', id => $id,
        object => { id => 'cus_FILE', object => 'customer', email => 'file@example.org' });
    my $f = spew("$dir/event.json", $body);
    my ($rc, $out) = send_tool('--secret-file', $secret_file, $f);
    like($out, qr/^\Q$id\E customer\.created: HTTP 200 \{"received":true\}$/, 'its own id');
    ($rc, $out) = send_tool('--secret-file', $secret_file, $f);
    like($out, qr/^\Q$id\E customer\.created: HTTP 200 \{"received":true,"duplicate":true\}$/,
         'sent again: a duplicate event id');
    my ($rc2, $dry) = tool3('send', '--secret-file', $secret_file, '--dry-run', $f);
    my ($sig, $sent) = $dry =~ /^Stripe-Signature: (\S+)\n(.*)\n\z/s;
    is($sent, $body, 'the body is the file');
    my ($t) = $sig =~ /^t=(\d+),v1=/;
    is($sig, sign_header($body, $s->{secret}, $t), 'signed as Stripe signs: t=,v1=HMAC("t.body")');
    ($rc, $out) = send_tool('--secret-file', $secret_file, '--count', 3, $f);
    like($out, qr/^2xx: 3 \(queued 3,/m, 'with --count: fresh ids, all queued') or diag $out;
};

subtest 'an event type the module does not handle: 200 ignored' => sub {
    my $f = spew("$dir/ignored.json", make_event(type => 'balance.available',
                                                   object => { object => 'balance' }));
    my ($rc, $out) = send_tool('--secret-file', $secret_file, $f);
    is($rc, 0, 'exit 0: a 2xx');
    like($out, qr/HTTP 200 \{"received":true,"ignored":"event type \\"balance\.available\\" is not handled"\}/,
         'ignored') or diag $out;
};

subtest 'failures and usage errors' => sub {
    my ($rc, $out, $err) = tool3('send', '--url', 'http://127.0.0.1:' . free_port() . '/x',
        '--secret-file', $secret_file, '--type', 'invoice.paid', '--timeout', 5);
    is($rc, 1, 'nothing listening: exit 1');
    like($out, qr/invoice\.paid: error: \S/, "the error: $out");

    ($rc, $out, $err) = tool3('send', '--secret-file', $secret_file, '--type', 'invoice.paid');
    is($rc, 2, 'no --url: exit 2');
    like($err, qr/--url is required/, 'says so');
    ($rc, $out, $err) = send_tool('--secret-file', $secret_file, '--type', 'invoice.paidd');
    is($rc, 2, 'unknown type: exit 2');
    like($err, qr/"invoice\.paidd" cannot be generated/, 'names it');
    ($rc, $out, $err) = send_tool('--type', 'invoice.paid');
    is($rc, 2, 'no --secret-file: exit 2');
    ($rc, $out, $err) = send_tool('--secret-file', "$dir/nope", '--type', 'invoice.paid');
    is($rc, 1, 'secret file missing: exit 1');
    like($err, qr/cannot read the secret file \Q$dir\E\/nope/, 'names the file');
    ($rc, $out, $err) = send_tool('--secret-file', $secret_file, '--count', 'x', '--type', 'invoice.paid');
    is($rc, 2, '--count x: exit 2');
    ($rc, $out, $err) = send_tool('--secret-file', $secret_file, "$dir/missing.json");
    is($rc, 1, 'event file missing: exit 1');
    like($err, qr/cannot read \Q$dir\E\/missing\.json/, 'names the file');
    spew("$dir/bad.json", "{\"id\":");
    ($rc, $out, $err) = send_tool('--secret-file', $secret_file, "$dir/bad.json");
    is($rc, 1, 'not JSON: exit 1');
    like($err, qr/bad\.json: not JSON/, "says so: $err");
    ($rc, $out) = tool3('send', '--help');
    is($rc, 0, '--help: exit 0');
    like($out, qr/usage: stripe-sync send/, 'usage');
};

finish();
