# Secrets out of core dumps (issue 6), checked on the running processes.
#
# nginx with the module: nginx itself stays dumpable, so the module keeps
# the webhook secrets (from a file and written inline in nginx.conf) and the
# Redis password in memory excluded from core dumps (MADV_DONTDUMP: "dd" in
# the VmFlags of /proc/PID/smaps). Every readable mapping of the master and
# of each worker is read through /proc/PID/mem after genuine and forged
# requests went through: each secret must be found (so the search works)
# and only in "dd" mappings. Again after a reload with a rotated secret.
#
# The consumer (stripe-sync consume) holds API keys, tokens and the Redis
# password in ordinary memory, copied by libcurl and hiredis: it makes
# itself non-dumpable with no core size instead. Run as nobody, its
# /proc/PID files are then owned by root (the kernel's sign of a process that
# is not dumpable), its core limit is 0, and a SIGSEGV leaves no core, where
# a control process started the same way does (when core_pattern is a file
# name, not a pipe to a crash collector).
#
# Needs root and a readable /proc/PID/mem of other processes; skipped
# otherwise.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use Fcntl qw(O_RDONLY SEEK_SET);
use Test::More;
use Time::HiRes qw(time sleep);
use StripeSync::Test;

require_module();
require_tool();

plan(skip_all => 'needs root to read other processes\' memory') if $> != 0;
plan(skip_all => 'valgrind changes every process\'s memory') if valgrind_mode();
plan(skip_all => 'no /proc/self/smaps with VmFlags (Linux 3.8+)')
    unless (slurp('/proc/self/smaps') // '') =~ /^VmFlags:/m;

my $n = 0;
sub rnd { substr(sha256_hex(time . $$ . ++$n . rand), 0, 24) }
my %SECRET = (
    webhook_file   => 'whsec_dumpfile_' . rnd(),
    webhook_inline => 'whsec_dumpinline_' . rnd(),
    webhook_next   => 'whsec_dumpnext_' . rnd(),
    redis_password => 'redis-dump-' . rnd(),
);

# the keyed HMAC-SHA256 states of each webhook secret (the eight words of
# SHA256_CTX.h after key^ipad and key^opad, little-endian), which the
# module prepares once: as good as the key to a forger, so they must be
# only where the secrets are
use Digest::SHA;
sub hmac_h {
    my ($key, $pad) = @_;
    my $k = length($key) > 64 ? Digest::SHA::sha256($key) : $key;
    $k .= "\0" x (64 - length $k);
    my $st = Digest::SHA->new(256)->add($k ^ (chr($pad) x 64))->getstate;
    my ($h) = $st =~ /^H:(\S+)/m or die "no H in getstate";
    my @w = map { hex } split /:/, $h;
    return pack('V8', @w[0 .. 7]);
}
for my $name (qw(webhook_file webhook_inline webhook_next)) {
    $SECRET{"${name}_ipad"} = hmac_h($SECRET{$name}, 0x36);
    $SECRET{"${name}_opad"} = hmac_h($SECRET{$name}, 0x5c);
}

my $dir = temp_dir('coredump');
my $hook_file = write_secret($dir, 'hook.whsec', "$SECRET{webhook_file}\n");
my $pw_file = write_secret($dir, 'redis.pass', "$SECRET{redis_password}\n");

# ------------------------------------------------------------ memory ---

# The mappings of a process, from smaps: lo, hi, perms, path, flags, dd.
sub mappings {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/smaps" or return ();
    my (@m, $cur);
    no warnings 'portable';    # [vsyscall] is above 2^32 * 2^32 / 2
    while (my $l = <$fh>) {
        if ($l =~ /^([0-9a-f]+)-([0-9a-f]+)\s+(\S+)\s+\S+\s+\S+\s+\S+\s*(.*?)\s*$/) {
            $cur = { lo => hex $1, hi => hex $2, range => "$1-$2", perms => $3,
                     path => $4, flags => '', dd => 0 };
            push @m, $cur;
        } elsif ($l =~ /^VmFlags:\s*(.*?)\s*$/ && $cur) {
            $cur->{flags} = $1;
            $cur->{dd} = ($1 =~ /(^|\s)dd(\s|$)/) ? 1 : 0;
        }
    }
    return @m;
}

# Every occurrence of each needle in the readable memory of $pid:
# { name => [ { range, path, flags, dd, addr }, ... ] }, and the bytes read.
sub search_memory {
    my ($pid, %needles) = @_;
    my %hits = map { $_ => [] } keys %needles;
    my $longest = 0;
    $longest < length $_ and $longest = length $_ for values %needles;
    sysopen(my $mem, "/proc/$pid/mem", O_RDONLY) or return (undef, 0);
    my $read = 0;
    for my $m (mappings($pid)) {
        next unless $m->{perms} =~ /^r/;
        next if $m->{path} =~ /^\[(vvar|vsyscall|vvar_vclock)\]$/;
        my ($addr, $tail) = ($m->{lo}, '');
        while ($addr < $m->{hi}) {
            my $want = $m->{hi} - $addr;
            $want = 1 << 20 if $want > 1 << 20;
            sysseek($mem, $addr, SEEK_SET) or last;
            my $buf = '';
            my $got = sysread($mem, $buf, $want);
            last unless $got;
            $read += $got;
            my $text = $tail . $buf;
            my $base = $addr - length $tail;
            for my $name (keys %needles) {
                my $at = 0;
                while (($at = index($text, $needles{$name}, $at)) >= 0) {
                    push @{ $hits{$name} }, { %$m, addr => $base + $at };
                    $at += length $needles{$name};
                }
            }
            $tail = length($buf) >= $longest - 1
                  ? substr($buf, length($buf) - ($longest - 1)) : $buf;
            $addr += $got;
        }
    }
    return (\%hits, $read);
}

# The checks for one process: found, and only in "dd" mappings.
sub only_in_dd {
    my ($what, $pid, @names) = @_;
    my ($hits, $read) = search_memory($pid, map { $_ => $SECRET{$_} } @names);
    ok($hits && $read > 0, "$what (pid $pid): memory read ("
       . sprintf('%.1f', $read / 1048576) . ' MB)') or return;
    for my $name (@names) {
        my @all = @{ $hits->{$name} };
        my @bad = grep { !$_->{dd} } @all;
        ok(@all > 0, "$what: $name found in its memory ("
           . scalar(@all) . ' copies)');
        is(scalar(@bad), 0, "$what: $name only in memory left out of "
           . 'core dumps (VmFlags dd)')
            or diag(join "\n", map { sprintf '  at 0x%x in %s %s %s [%s]',
                $_->{addr}, $_->{range}, $_->{perms}, $_->{path} || '(anon)',
                $_->{flags} } @bad);
    }
}

# reading another process's memory may be forbidden even to root (a
# container without CAP_SYS_PTRACE, a seccomp or LSM policy)
{
    my $probe = spawn_process(name => 'mem-probe', cmd => [ '/bin/sleep', '30' ]);
    wait_until(sub { (slurp("/proc/$probe->{pid}/comm") // '') =~ /sleep/ }, tmo(5));
    my (undef, $read) = search_memory($probe->pid, probe => 'stripe-sync');
    $probe->kill;
    plan(skip_all => "cannot read /proc/PID/mem of another process") unless $read;
}

# ------------------------------------------------------------- nginx ---

my $redis = start_redis(password => $SECRET{redis_password});

sub nginx_conf {
    my ($secret_file) = @_;
    return (
        workers => 2,
        http => "stripe_sync_redis 127.0.0.1:$redis->{port};
                 stripe_sync_redis_password_file $pw_file;",
        conf => "
            location = /hook {
                stripe_sync;
                stripe_sync_secret_file $secret_file;
            }
            location = /inline {
                stripe_sync;
                stripe_sync_secret $SECRET{webhook_inline};
            }",
    );
}

my $ng = start_nginx(nginx_conf($hook_file));

sub traffic {
    my ($file_secret) = @_;
    # both workers, both locations, genuine and forged; Redis AUTH done
    for my $i (1 .. 6) {
        for my $loc ([ '/hook', $file_secret ], [ '/inline', $SECRET{webhook_inline} ]) {
            my $body = make_event(type => 'invoice.paid', object => {
                id => "in_dump$i", object => 'invoice', customer => "cus_dump$i",
                customer_email => "dump$i\@example.org", attempt_count => 1,
                billing_reason => 'subscription_create', amount_paid => 2900,
                amount_due => 2900, currency => 'usd', status => 'paid',
                parent => { type => 'subscription_details',
                            subscription_details => { subscription => "sub_dump$i" } },
                lines => { object => 'list', data => [] }, metadata => {} });
            my $r = post_event($ng->url($loc->[0]), $body, secret => $loc->[1]);
            is($r->{status}, 200, "$loc->[0]: a genuine event queued")
                or diag_response($r, $ng) if $i == 1;
            $r = post_event($ng->url($loc->[0]), $body, secret => 'whsec_forged');
            is($r->{status}, 400, "$loc->[0]: a forged one refused") if $i == 1;
        }
    }
}

# the workers' Redis connections, AUTH answered (their last command, or
# the SCRIPT LOAD that follows it on a new connection)
sub workers_authed {
    my ($count) = @_;
    return wait_until(sub {
        my $list = $redis->cmd('CLIENT', 'LIST') // '';
        my $n = () = $list =~ /\bcmd=(?:auth|script\|load)\b/g;
        return $n >= $count;
    }, tmo(10));
}

subtest 'nginx, just started: secrets only in memory left out of core dumps' => sub {
    # before any request: hiredis's freed buffers are not reused yet
    ok(workers_authed(2), 'both workers connected to Redis with the password');
    my @names = qw(webhook_file webhook_inline redis_password
                   webhook_file_ipad webhook_file_opad webhook_inline_ipad
                   webhook_inline_opad);
    only_in_dd('master', $ng->pid, @names);
    only_in_dd("worker $_", $_, @names) for $ng->worker_pids;
};

subtest 'nginx, after requests: secrets only in memory left out of core dumps' => sub {
    traffic($SECRET{webhook_file});
    ok($redis->queue_len >= 2, 'events reached Redis (AUTH with the password)');
    my @names = qw(webhook_file webhook_inline redis_password
                   webhook_file_ipad webhook_file_opad webhook_inline_ipad
                   webhook_inline_opad);
    only_in_dd('master', $ng->pid, @names);
    my @w = $ng->worker_pids;
    is(scalar(@w), 2, 'two workers');
    only_in_dd("worker $_", $_, @names) for @w;
};

subtest 'nginx -T shows asterisks for an inline secret' => sub {
    my $out = `/usr/sbin/nginx -T -p ${\ $ng->prefix}/ -c ${\ $ng->conf_file} 2>&1`;
    like($out, qr/stripe_sync_secret \*{10,};/, 'the secret as asterisks')
        or diag $out;
    unlike($out, qr/\Q$SECRET{webhook_inline}\E/, 'not the secret');
};

subtest 'nginx, reloaded with a rotated secret' => sub {
    spew($hook_file, "$SECRET{webhook_next}\n$SECRET{webhook_file}\n", 0600);
    $ng->reload(wait_old => 1);
    traffic($SECRET{webhook_next});
    my @names = qw(webhook_next webhook_file webhook_inline redis_password
                   webhook_next_ipad webhook_next_opad webhook_file_ipad
                   webhook_file_opad webhook_inline_ipad webhook_inline_opad);
    only_in_dd('master', $ng->pid, @names);
    only_in_dd("new worker $_", $_, @names) for $ng->worker_pids;
};

# ---------------------------------------------------------- consumer ---

my ($nobody_uid, $nobody_gid) = (getpwnam('nobody'))[2, 3];
my $setpriv = -x '/usr/bin/setpriv' ? '/usr/bin/setpriv' : undef;
my $prlimit = -x '/usr/bin/prlimit' ? '/usr/bin/prlimit' : undef;

# started as nobody with an unlimited core size, in a directory of its own
sub as_nobody {
    my ($name, @cmd) = @_;
    my $d = temp_dir($name);
    chown $nobody_uid, $nobody_gid, $d;
    return spawn_process(name => $name, dir => $d, chdir => $d,
        cmd => [ $setpriv, "--reuid=$nobody_uid", "--regid=$nobody_gid",
                 '--clear-groups', $prlimit, '--core=unlimited', '--', @cmd ]);
}

sub owner { (stat "/proc/$_[0]/status")[4] }

sub core_limit {
    my ($pid) = @_;
    my ($l) = grep { /^Max core file size/ } split /\n/, slurp("/proc/$pid/limits") // '';
    return $l && $l =~ /^Max core file size\s+(\S+)\s+(\S+)/ ? "$1 $2" : '?';
}

SKIP: {
    skip 'no setpriv or prlimit (util-linux), or no user nobody', 1
        unless $setpriv && $prlimit && defined $nobody_uid;

    subtest 'the consumer is not dumpable' => sub {
        my $cdir = temp_dir('consumer-conf');
        chown $nobody_uid, $nobody_gid, $cdir;
        my %file;
        for my $name (qw(redis_password stripe_key)) {
            $SECRET{$name} //= "sk_test_dump_" . rnd();
            $file{$name} = write_secret($cdir, $name, "$SECRET{$name}\n");
            chown $nobody_uid, $nobody_gid, $file{$name};
        }
        my $conf = spew("$cdir/consumer.conf", libconfig({
            redis => $redis->addr, redis_password_file => $file{redis_password},
            consumer_id => 'dumptest', heartbeat => 1,
            stripe => { api_key_file => $file{stripe_key} },
            provider => { type => 'log' } }), 0600);
        chown $nobody_uid, $nobody_gid, $conf;

        my $c = as_nobody('consumer', tool_path(), 'consume', '-c', $conf);
        my $control = as_nobody('control', '/bin/sleep', '60');
        ok(wait_until(sub { $redis->cmd('EXISTS', '{stripe_sync}:consumer:dumptest') },
                      tmo(10)), 'the consumer runs (its heartbeat, so it has '
                      . 'read its secrets and AUTHed)') or diag $c->output;

        is(owner($control->pid), $nobody_uid,
           'control: its /proc files belong to nobody (dumpable)');
        is(owner($c->pid), 0,
           'consumer: its /proc files belong to root (not dumpable)');
        is(core_limit($control->pid), 'unlimited unlimited',
           'control: core size unlimited, as started');
        is(core_limit($c->pid), '0 0', 'consumer: core size 0');

        my $pattern = slurp('/proc/sys/kernel/core_pattern') // '';
        chomp $pattern;
      SKIP: {
            skip "core_pattern is \"$pattern\", not a file name here: no "
                 . 'crash is provoked', 4 if $pattern =~ m{^\||/|%};
            my $st = $control->stop(sig => 'SEGV', timeout => tmo(20));
            is($st & 0x7f, 11, 'control: SIGSEGV');
            ok(($st & 0x80) && glob("$control->{dir}/core*"),
               'control: it dumped a core (so this check can fail)');
            $st = $c->stop(sig => 'SEGV', timeout => tmo(20));
            is($st & 0x7f, 11, 'consumer: SIGSEGV');
            ok(!($st & 0x80) && !glob("$c->{dir}/core*"),
               'consumer: no core dumped')
                or diag "status $st: " . join ' ', glob("$c->{dir}/core*");
        }
        $c->kill;
        $control->kill;
    };
}

finish();
