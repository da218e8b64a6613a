# stripe-sync consume's rate limits (SPEC 6): a token bucket per provider
# (provider.rate requests/s, provider.burst at once), and a 429's or 503's
# Retry-After pauses every request to the platform until it has elapsed.
# Checked on the request timestamps the fake platforms record.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(strftime);
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use StripeSync::Test;
use StripeSync::Fake;

require_module();
require_tool();

my $s = StripeSync::Fake::Stack->new;
my $c;

sub settle {
    my ($what, $t) = @_;
    ok($s->idle(tmo($t // 20)), "$what: the queue drained")
        or diag("consumer log:\n" . $c->output);
}

# user + system CPU seconds of a process
sub cpu_seconds {
    my ($pid) = @_;
    my $st = slurp("/proc/$pid/stat") // return 0;
    $st =~ s/^.*\)\s+//s;
    my @f = split ' ', $st;
    return ($f[11] + $f[12]) / POSIX::sysconf(POSIX::_SC_CLK_TCK());
}

sub paid {
    my ($n) = @_;
    return $s->send('invoice.paid', $s->invoice(id => "in_$n", customer => "cus_$n",
        email => lc("$n\@example.org"), billing_reason => 'subscription_create',
        subscription => "sub_$n"));
}

subtest 'provider.rate = 5, burst 5: never faster than the bucket allows' => sub {
    my $kit = StripeSync::Fake->new(api => 'kit', seed => { tags => ['Rated'] });
    $c = $s->consumer(provider => $kit, concurrency => 8,
                      provider_extra => { rate => 5, burst => 5 },
                      rules => [ { on => 'purchase', tag => ['Rated'] } ]);
    my $n = 12;
    my ($cpu0, $t0) = (cpu_seconds($c->pid), time);
    paid("RATE$_") for 1 .. $n;
    settle('twelve jobs', 30);
    my ($cpu, $wall) = (cpu_seconds($c->pid) - $cpu0, time - $t0);
    ok($cpu < 0.25 * $wall, sprintf('waiting for tokens does not spin: %.2f s CPU in %.2f s',
                                    $cpu, $wall));
    my @t = map { $_->{t} / 1000 } $kit->requests;
    ok(@t >= 2 * $n, scalar(@t) . ' requests (upsert + tag each, a tag listing)');
    my ($rate, $burst) = (5, 5);
    my @over;
    for my $i (0 .. $#t) {
        for my $j ($i + 1 .. $#t) {
            my $allowed = $burst + $rate * ($t[$j] - $t[$i]) + 0.5;   # 0.5: timer slack
            push @over, sprintf('requests %d..%d: %d in %.3f s (bucket allows %.1f)',
                                $i, $j, $j - $i + 1, $t[$j] - $t[$i], $allowed)
                if $j - $i + 1 > $allowed;
        }
    }
    ok(!@over, 'no stretch of requests beats the token bucket') or diag join "\n", @over[0 .. ($#over < 9 ? $#over : 9)];
    my $span = $t[-1] - $t[0];
    my $min = (@t - $burst) / $rate;
    ok($span >= $min - 0.3, sprintf('%d requests took %.2f s (>= %.2f)', scalar @t, $span, $min));
    my @first = grep { $_ - $t[0] < 0.1 } @t;
    ok(@first > 1 && @first <= $burst, scalar(@first) . ' requests at once at the start (the burst)');
    $kit->no_violations;
    is($c->stop(sig => 'TERM', timeout => tmo(10)), 0, 'stopped');
};

subtest 'Klaviyo 429 with Retry-After: no request to Klaviyo until it elapses' => sub {
    my $kl = StripeSync::Fake->new(api => 'klaviyo');
    $c = $s->consumer(provider => $kl, concurrency => 8, rules => [
        { on => 'purchase', track => 'Paid' } ]);
    $kl->fault(method => 'POST', route => '/events', status => 429, retry_after => 3);
    paid("K429_$_") for 1 .. 5;
    settle('five jobs after a 429', 30);
    my @r = $kl->requests;
    my ($f) = grep { ($_->{status} // 0) == 429 } @r;
    ok($f, 'the 429 was served') or return;
    my $from = $f->{done_t};
    my @early = grep { $_->{t} > $from + 150 && $_->{t} < $from + 3000 - 50 } @r;
    ok(!@early, 'nothing reached Klaviyo during the 3 s Retry-After')
        or diag join "\n", map { sprintf '%+.0f ms %s %s', $_->{t} - $from, $_->{method}, $_->{route} } @early;
    my @after = grep { $_->{t} >= $from + 3000 - 50 } @r;
    ok(@after, sprintf 'requests resumed (first %.2f s after the 429)',
       @after ? ($after[0]{t} - $from) / 1000 : -1);
    is(scalar(grep { $_->{metric} eq 'Paid' } @{ $kl->state->{events} }), 5,
       'all five events recorded in the end');
    is_deeply([ grep { $_->{duplicate} } @{ $kl->state->{events} } ], [], 'none twice');
    $kl->no_violations;
    is($c->stop(sig => 'TERM', timeout => tmo(10)), 0, 'stopped');
};

subtest 'ActiveCampaign 503 with an HTTP-date Retry-After: honoured too' => sub {
    my $ac = StripeSync::Fake->new(api => 'activecampaign');
    $c = $s->consumer(provider => $ac, rules => [ { on => 'purchase', tag => ['buyer'] } ]);
    my $until = int(time) + 4;
    $ac->fault(method => 'POST', route => '/contact/sync', status => 503,
               headers => { 'Retry-After' => strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime $until) });
    paid('AC503');
    settle('503', 30);
    my @r = $ac->requests;
    my ($f) = grep { ($_->{status} // 0) == 503 } @r;
    ok($f, 'the 503 was served') or return;
    my @next = grep { $_->{seq} > $f->{seq} } @r;
    ok(@next, 'then more requests');
    ok(!@next || $next[0]{t} / 1000 >= $until - 0.05,
       sprintf('the next came %.2f s after the date', @next ? $next[0]{t} / 1000 - $until : 0));
    my ($contact) = values %{ $ac->state->{contacts} };
    ok($contact && $contact->{email} eq 'ac503@example.org', 'contact synced in the end');
    $ac->no_violations;
    is($c->stop(sig => 'TERM', timeout => tmo(10)), 0, 'stopped');
};

subtest 'ActiveCampaign defaults vs a 5 requests/s account limit' => sub {
    # the fake refuses more than 5 requests in any second (a sliding window)
    # (the Deep Data connection exists: t/consumer_presets.t covers making it)
    my $ac = StripeSync::Fake->new(api => 'activecampaign',
        rate_limit => { max => 5, per => 1, retry_after => 1 },
        seed => { connections => [ { service => 'stripe-sync', externalid => 'stripe-sync' } ] });
    $c = $s->consumer(provider => $ac, concurrency => 8, preset => 'activecampaign');
    paid("ACR$_") for 1 .. 6;
    settle('six jobs', 40);
    my @r = $ac->requests;
    my @limited = grep { ($_->{fault} // '') eq 'rate limit' } @r;
    is(scalar(keys %{ $ac->state->{contacts} }), 6, 'six contacts in the end');
    is_deeply($s->dead, [], "no dead letters") or diag explain $s->dead;
    note(sprintf '%d requests, %d answered 429 by the 5/s window', scalar @r, scalar @limited);
    TODO: {
        local $TODO = 'the default burst (5 at 5/s) lets up to 9 requests into one second';
        is(scalar @limited, 0, 'the defaults stay under a strict 5 requests/s window');
    }
    is($c->stop(sig => 'TERM', timeout => tmo(10)), 0, 'stopped');
};

finish();
