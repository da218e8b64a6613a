package StripeSync::Test;

# Test harness for stripe-sync's integration tests (t/*.t), core Perl only.
#
#   use FindBin; use lib "$FindBin::Bin/lib";
#   use Test::More;
#   use StripeSync::Test;
#
#   require_module();                       # skip_all unless the .so is built
#   my $redis = start_redis();              # redis-server on a free port
#   my $ng = start_nginx(
#       http => "stripe_sync_redis 127.0.0.1:$redis->{port};",
#       conf => 'location = /hook { stripe_sync; stripe_sync_secret whsec_a; }',
#   );
#   my ($body, $id) = make_event(type => 'invoice.paid', object => {...});
#   my $res = post_event($ng->url('/hook'), $body, secret => 'whsec_a');
#   is_deeply(res_json($res), {received => 1});
#   my $q = $redis->queue;                  # decoded records, oldest first
#   finish();                               # stops everything, done_testing
#
# API (all exported):
#   start_redis(%o) -> Redis: port addr cmd cmd_db cmd_nowait cli stalled
#       queue queue_raw queue_len hgetall key stop kill restart start alive
#   start_nginx(%o) -> Nginx: url port prefix pid worker_pids reload quit
#       stop error_log error_log_mark error_log_since error_log_tail alerts
#       access_log stub_status write_conf wait_pids_gone old_workers
#       kill_worker killed_workers
#   nginx_t(%o) -> (exit code, output)
#   make_event sign sign_header post_event http_request http_get raw_http
#   raw_post post_async post_parallel parse_prometheus fixture_object
#   unique_id json_encode json_decode res_json wait_until tmo free_port
#   spawn_process slurp spew temp_dir diag_response require_module finish
#   spawn_sub (a forked Perl sub as a background process)
#   tool_path require_tool start_consumer run_tool libconfig write_secret
#   (the stripe-sync tool; fake APIs for it: t/lib/StripeSync/Fake.pm)
#
# Processes: every process started here is killed at END, even when a test
# dies; each runs in its own process group with PR_SET_PDEATHSIG, so nothing
# outlives the test file. Every wait has a deadline; tmo(N) scales N seconds
# by the slowdown factor (10 under STRIPE_SYNC_VALGRIND=1, or
# $ENV{STRIPE_SYNC_TIMEOUT_FACTOR}).
#
# Environment:
#   STRIPE_SYNC_MODULE         path of the .so (default build/...so)
#   STRIPE_SYNC_NGINX          nginx binary (default /usr/sbin/nginx)
#   STRIPE_SYNC_VALGRIND=1     run nginx under memcheck; fail on errors whose
#                              frames are ours (ngx_http_stripe_sync*,
#                              stripe_sig*, action_*)
#   STRIPE_SYNC_KEEP=1         keep temp dirs (paths printed with diag)
#   STRIPE_SYNC_TEST_TIMEOUT   watchdog for a whole test file, seconds (170)

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA qw(hmac_sha256_hex);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(time sleep);

our @EXPORT = qw(
    free_port start_redis start_nginx nginx_t require_module module_path
    repo_root sign sign_header post_event http_request http_get raw_http
    raw_post make_event
    fixture_object unique_id json_encode json_decode res_json wait_until
    tmo valgrind_mode post_async post_parallel parse_prometheus
    spawn_process diag_response finish slurp spew temp_dir
    spawn_sub tool_path require_tool start_consumer run_tool libconfig
    write_secret
);

my $ORIG_PID = $$;
my (@NGINX, @PROCS);
my %PORTS_HANDED_OUT;
my $UNIQUE = 0;

my $REPO = abs_path(dirname(__FILE__) . '/../../..');
my $NGINX_BIN = $ENV{STRIPE_SYNC_NGINX} || '/usr/sbin/nginx';
my $PDEATHSIG_OK = $^O eq 'linux' && (POSIX::uname())[4] eq 'x86_64';

$SIG{PIPE} = 'IGNORE';

# A watchdog for the whole file: exit (running END cleanup) rather than hang.
my $WATCHDOG = tmo($ENV{STRIPE_SYNC_TEST_TIMEOUT} || 170);
$SIG{ALRM} = sub {
    Test::More::diag("watchdog: test file ran longer than ${WATCHDOG}s");
    exit 254;
};
$SIG{INT} = $SIG{TERM} = sub { exit 253 };
alarm $WATCHDOG;

# --------------------------------------------------------------- basics ---

sub repo_root { $REPO }

sub valgrind_mode { $ENV{STRIPE_SYNC_VALGRIND} ? 1 : 0 }

# Scales a timeout in seconds by the slowdown factor.
sub tmo {
    my ($s) = @_;
    my $f = $ENV{STRIPE_SYNC_TIMEOUT_FACTOR} || (valgrind_mode() ? 10 : 1);
    return $s * $f;
}

sub module_path {
    return $ENV{STRIPE_SYNC_MODULE}
        || "$REPO/build/ngx_http_stripe_sync_module.so";
}

# plan skip_all unless the module is built.
sub require_module {
    my $so = module_path();
    Test::More::plan(skip_all => "module not built ($so): run make module")
        unless -f $so;
}

sub slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or return undef;
    local $/;
    my $s = <$fh>;
    return $s // '';
}

sub spew {
    my ($file, $content, $mode) = @_;
    open my $fh, '>:raw', $file or die "cannot write $file: $!";
    print {$fh} $content;
    close $fh or die "cannot write $file: $!";
    chmod $mode, $file if defined $mode;
    return $file;
}

# A fresh temp dir /tmp/sstest-<tag>-XXXXXX, world-readable (nginx workers
# run as nobody), removed at exit unless STRIPE_SYNC_KEEP.
sub temp_dir {
    my ($tag) = @_;
    my $d = tempdir("sstest-$tag-XXXXXX", TMPDIR => 1,
                    CLEANUP => !$ENV{STRIPE_SYNC_KEEP});
    chmod 0755, $d;
    Test::More::diag("keeping $d") if $ENV{STRIPE_SYNC_KEEP};
    return $d;
}

# A free loopback TCP port (bind port 0), never the same twice per process.
sub free_port {
    for (1 .. 50) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
            LocalPort => 0, Proto => 'tcp', Listen => 1, ReuseAddr => 1)
            or die "free_port: $!";
        my $p = $s->sockport;
        close $s;
        next if $PORTS_HANDED_OUT{$p}++;
        return $p;
    }
    die "free_port: no free port";
}

# Polls $cb every $interval s until it returns true or $timeout s pass.
# Returns the last value of $cb.
sub wait_until {
    my ($cb, $timeout, $interval) = @_;
    $timeout  //= tmo(5);
    $interval //= 0.02;
    my $deadline = time + $timeout;
    while (1) {
        my $v = $cb->();
        return $v if $v;
        return $v if time >= $deadline;
        sleep $interval;
    }
}

sub unique_id {
    my ($prefix) = @_;
    $prefix //= 'evt';
    return sprintf '%s_T%d%06d%05d', $prefix, time, $$, ++$UNIQUE;
}

# ----------------------------------------------------------------- JSON ---

my $JSON_ENC = JSON::PP->new->utf8->canonical;
my $JSON_DEC = JSON::PP->new->utf8->boolean_values(0, 1);

sub json_encode { $JSON_ENC->encode($_[0]) }

# Decodes JSON bytes; true/false become 1/0.
sub json_decode { $JSON_DEC->decode($_[0]) }

# The decoded JSON body of a response (booleans as 1/0), or undef.
sub res_json {
    my ($res) = @_;
    return undef unless defined $res->{content} && length $res->{content};
    return eval { json_decode($res->{content}) };
}

# ------------------------------------------------------------ processes ---

sub _children_of {
    my ($ppid) = @_;
    my @kids;
    for my $d (glob '/proc/[0-9]*') {
        open my $fh, '<', "$d/stat" or next;
        my $s = <$fh> // next;
        $s =~ /\)\s+(\S)\s+(\d+)/ or next;
        next if $1 eq 'Z' || $1 eq 'X' || $2 != $ppid;
        push @kids, ($d =~ m{(\d+)$})[0];
    }
    return sort { $a <=> $b } @kids;
}

sub _alive {
    my ($pid) = @_;
    return 0 unless $pid;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $s = <$fh> // return 0;
    return $s =~ /\)\s+[ZX]\s/ ? 0 : 1;
}

# Forks and execs @$cmd, output appended to $log; own process group and
# SIGKILL when the test process dies.
sub _spawn {
    my (%o) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        syscall(157, 1, 9) if $PDEATHSIG_OK;    # prctl(PR_SET_PDEATHSIG, KILL)
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $o{log} or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        chdir $o{dir} if $o{dir};
        $ENV{$_} = $o{env}{$_} for keys %{ $o{env} || {} };
        { no warnings "exec"; exec { $o{cmd}[0] } @{ $o{cmd} }; }
        POSIX::_exit(127);
    }
    _guard($pid) if $$ == $ORIG_PID;
    return $pid;
}

# A guardian process that outlives a test killed with SIGKILL: it reads
# the process group ids of everything spawned from a pipe, and on EOF (the
# test process is gone) kills those groups. nginx's workers are in their
# master's group, so they go too. A normal END kills the guardian itself.
my ($GUARD_PID, $GUARD_W);

sub _guard {
    my ($pgid) = @_;
    if (!$GUARD_PID) {
        pipe(my $r, my $w) or return;
        my $pid = fork;
        return unless defined $pid;
        if ($pid == 0) {
            close $w;
            setpgrp(0, 0);    # a terminal's ^C must not take it first
            alarm 0;
            $SIG{$_} = 'IGNORE' for qw(INT TERM HUP QUIT PIPE ALRM);
            my @groups;
            while (my $l = <$r>) {
                chomp $l;
                push @groups, $l if $l =~ /^\d+$/;
            }
            kill 'KILL', -$_ for @groups;
            POSIX::_exit(0);
        }
        close $r;
        $w->autoflush(1);
        ($GUARD_PID, $GUARD_W) = ($pid, $w);
    }
    print {$GUARD_W} "$pgid\n";
}

# waitpid with a deadline; returns the wait status or undef on timeout.
sub _reap {
    my ($pid, $timeout) = @_;
    my $deadline = time + $timeout;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        return $? if $r == $pid;
        return -1 if $r < 0;      # not our child / already reaped
        return undef if time >= $deadline;
        sleep 0.02;
    }
}

# A generic background process (for later: the consumer daemon, fake HTTP
# servers run as scripts, ...). Killed at END.
#   my $p = spawn_process(name => 'consumer', cmd => [...], env => {...});
#   $p->{pid}, $p->output, $p->alive, $p->stop(sig => 'TERM', timeout => 5)
sub spawn_process {
    my (%o) = @_;
    my $dir = $o{dir} || temp_dir($o{name} || 'proc');
    my $log = $o{log} || "$dir/" . ($o{name} || 'proc') . '.log';
    my $self = bless { %o, dir => $dir, log => $log }, 'StripeSync::Test::Process';
    $self->{pid} = _spawn(cmd => $o{cmd}, log => $log, env => $o{env},
                          dir => $o{chdir});
    push @PROCS, $self;
    return $self;
}

# A forked child running $code (a Perl sub: fake servers), as a background
# process like spawn_process's: own process group, SIGKILL when the test
# process dies, killed at END. STDOUT/STDERR go to $log; the child exits
# (without END blocks) when $code returns or dies.
#   my $p = spawn_sub(name => 'fake', code => sub { ... });
sub spawn_sub {
    my (%o) = @_;
    my $dir = $o{dir} || temp_dir($o{name} || 'sub');
    my $log = $o{log} || "$dir/" . ($o{name} || 'sub') . '.log';
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        alarm 0;
        $SIG{$_} = 'DEFAULT' for qw(ALRM INT TERM HUP);
        setpgrp(0, 0);
        syscall(157, 1, 9) if $PDEATHSIG_OK;    # prctl(PR_SET_PDEATHSIG, KILL)
        close $GUARD_W if $GUARD_W;    # the guardian must see EOF when the test dies
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        STDOUT->autoflush(1);
        STDERR->autoflush(1);
        my $ok = eval { $o{code}->(); 1 };
        print STDERR "spawn_sub $o{name}: $@" unless $ok;
        POSIX::_exit($ok ? 0 : 1);
    }
    _guard($pid) if $$ == $ORIG_PID;
    my $self = bless { %o, dir => $dir, log => $log, pid => $pid },
                     'StripeSync::Test::Process';
    delete $self->{code};
    push @PROCS, $self;
    return $self;
}

# ------------------------------------------------------------ the tool ---

# build/stripe-sync (or $ENV{STRIPE_SYNC_TOOL})
sub tool_path { $ENV{STRIPE_SYNC_TOOL} || "$REPO/build/stripe-sync" }

# plan skip_all unless the tool is built.
sub require_tool {
    my $t = tool_path();
    Test::More::plan(skip_all => "stripe-sync not built ($t): run make tool")
        unless -x $t;
}

# A secret file (mode 0600, as the tool wants): returns its path.
# Replaced by rename: a process starting meanwhile (several consumers
# share one Stack's secret files) reads the old file or the new, never a
# truncated one.
sub write_secret {
    my ($dir, $name, $content) = @_;
    my $file = "$dir/$name";
    spew("$file.tmp.$$", $content, 0600);
    rename "$file.tmp.$$", $file or die "cannot rename to $file: $!";
    return $file;
}

# libconfig text of a Perl structure: a hash is a group { }, an array of
# hashes a list ( ), another array an array [ ]; JSON::PP::true/false are
# true/false; numbers (as /^-?\d+(\.\d+)?$/) are bare ("5" an int, "5.0" a
# float); a scalar ref is always a quoted string (\"5"); the rest quoted.
# Keys are sorted; top-level "rules" keep their array order.
sub libconfig {
    my ($v, $indent) = @_;
    $indent //= '';
    my $in = "$indent  ";
    my $scalar = sub {
        my ($x) = @_;
        return 'true' if ref $x && eval { $x->isa('JSON::PP::Boolean') } && $x;
        return 'false' if ref $x && eval { $x->isa('JSON::PP::Boolean') };
        my $force = ref $x eq 'SCALAR';
        $x = $$x if $force;
        return $x if !$force && defined $x && $x =~ /^-?\d+(\.\d+)?$/;
        $x //= '';
        $x =~ s/(["\\])/\\$1/g;
        $x =~ s/\n/\\n/g;
        $x =~ s/\t/\\t/g;
        return qq("$x");
    };
    my $value;
    $value = sub {
        my ($x, $ind) = @_;
        if (ref $x eq 'HASH') {
            return "{\n" . libconfig($x, "$ind  ") . "$ind}";
        }
        if (ref $x eq 'ARRAY') {
            if (@$x && ref $x->[0] eq 'HASH') {
                return "(\n" . join(",\n", map { "$ind  " . $value->($_, "$ind  ") } @$x)
                    . "\n$ind)";
            }
            return '[' . join(', ', map { $scalar->($_) } @$x) . ']';
        }
        return $scalar->($x);
    };
    return $value->($v, $indent) . "\n" unless ref $v eq 'HASH';
    my $out = '';
    for my $k (sort keys %$v) {
        next unless defined $v->{$k};
        $out .= "$indent$k = " . $value->($v->{$k}, $indent) . ";\n";
    }
    return $out;
}

# Starts `stripe-sync consume -c FILE`:
#   start_consumer(config => \%conf | $text,   written to dir/stripe-sync.conf
#                  conf_file => path,          or an existing file
#                  args => [...], env => {...}, name => 'consumer',
#                  dir => .., log => ..)       log: appended (restarts)
# -> StripeSync::Test::Process with {conf} (the file) and {dir}.
sub start_consumer {
    my (%o) = @_;
    my $name = $o{name} || 'consumer';
    my $dir = $o{dir} || temp_dir($name);
    my $conf = $o{conf_file} || "$dir/$name.conf";
    if (defined $o{config}) {
        spew($conf, ref $o{config} ? libconfig($o{config}) : $o{config});
    }
    return spawn_process(name => $name, dir => $dir, conf => $conf,
        log => $o{log},
        cmd => [ tool_path(), 'consume', '-c', $conf, @{ $o{args} || [] } ],
        env => $o{env});
}

# Runs the tool to completion: (exit code, stdout+stderr). Killed after
# timeout seconds (exit code -1 then).
sub run_tool {
    my (@args) = @_;
    my %o = ref $args[-1] eq 'HASH' ? %{ pop @args } : ();
    my $dir = temp_dir('tool');
    my $pid = _spawn(cmd => [ tool_path(), @args ], log => "$dir/out.log",
                     env => $o{env});
    my $st = _reap($pid, $o{timeout} // tmo(30));
    if (!defined $st) {
        kill 'KILL', -$pid, $pid;
        _reap($pid, 5);
        return (-1, slurp("$dir/out.log") // '');
    }
    return ($st >> 8, slurp("$dir/out.log") // '');
}

# ---------------------------------------------------------------- HTTP ---

# http_request($method, $url, headers => {...}, content => $bytes,
#              timeout => $s) -> HTTP::Tiny response plus {json}, {elapsed}
sub http_request {
    my ($method, $url, %o) = @_;
    my $ht = HTTP::Tiny->new(timeout => $o{timeout} // tmo(10),
        keep_alive => 0, agent => 'stripe-sync-test/1');
    my %args = (headers => $o{headers} || {});
    $args{content} = $o{content} if defined $o{content};
    my $t0 = time;
    my $res = $ht->request($method, $url, \%args);
    $res->{elapsed} = time - $t0;
    $res->{json} = res_json($res);
    return $res;
}

sub http_get { http_request('GET', @_) }

# Raw HTTP over one connection, for what HTTP::Tiny cannot do (pipelining,
# chunked bodies, clients that go away):
#   raw_http(port => N, data => $bytes,
#            responses => 1,           # how many to read (Content-Length
#                                      # framed, or until EOF)
#            close_after_send => 1,    # hang up at once, read nothing
#            timeout => s)
# -> list of { status, headers => {lowercase => value}, content }
sub raw_http {
    my (%o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $o{port},
        Proto => 'tcp', Timeout => tmo(5)) or die "raw_http: connect: $!";
    binmode $s;
    my $data = $o{data};
    while (length $data) {
        my $n = syswrite $s, $data;
        die "raw_http: write: $!" unless defined $n;
        substr($data, 0, $n, '');
    }
    if ($o{close_after_send}) {
        close $s;
        return ();
    }
    my $deadline = time + ($o{timeout} // tmo(10));
    my ($buf, $eof, @res) = ('', 0);
    my $fill = sub {
        my $left = $deadline - time;
        return 0 if $left <= 0 || $eof;
        IO::Select->new($s)->can_read($left) or return 0;
        my $n = sysread $s, $buf, 65536, length $buf;
        $eof = 1 unless $n;
        return $n;
    };
    while (@res < ($o{responses} // 1)) {
        my $i;
        $fill->() or last while ($i = index $buf, "\r\n\r\n") < 0;
        last if $i < 0;
        my $head = substr $buf, 0, $i + 4, '';
        my ($status) = $head =~ m{^HTTP/\d\.\d (\d{3})};
        my %h;
        $h{ lc $1 } = $2 while $head =~ /^([^:\r\n]+):\s*([^\r\n]*)/mg;
        my $len = $h{'content-length'};
        if (defined $len) {
            $fill->() or last while length $buf < $len;
        } else {
            1 while $fill->();
            $len = length $buf;
        }
        my $content = substr $buf, 0, $len, '';
        push @res, { status => $status, headers => \%h, content => $content,
                     json => scalar res_json({ content => $content }) };
    }
    close $s;
    return @res;
}

# The bytes of a signed webhook POST, for raw_http.
#   raw_post($path, $body, secret => .., t => .., chunked => 1,
#            keepalive => 1, headers => {..})
sub raw_post {
    my ($path, $body, %o) = @_;
    my %h = ('Host' => 'localhost', 'Content-Type' => 'application/json',
             'Connection' => $o{keepalive} ? 'keep-alive' : 'close',
             %{ $o{headers} || {} });
    $h{'Stripe-Signature'} = sign_header($body, $o{secret}, $o{t})
        if defined $o{secret};
    my $payload = $body;
    if ($o{chunked}) {
        $h{'Transfer-Encoding'} = 'chunked';
        $payload = '';
        for (my $i = 0; $i < length $body; $i += 1000) {
            my $c = substr $body, $i, 1000;
            $payload .= sprintf("%x\r\n", length $c) . $c . "\r\n";
        }
        $payload .= "0\r\n\r\n";
    } else {
        $h{'Content-Length'} = length $body;
    }
    return "POST $path HTTP/1.1\r\n"
        . join('', map { "$_: $h{$_}\r\n" } sort keys %h) . "\r\n" . $payload;
}

# Lowercase hex HMAC-SHA256 of "<t>.<body>" keyed with the whole secret.
sub sign {
    my ($body, $secret, $t) = @_;
    $t //= time;
    return hmac_sha256_hex("$t.$body", $secret);
}

# "t=<t>,v1=<hex>[,v1=<hex>...]", one v1 per secret ($secrets: string or
# array ref).
sub sign_header {
    my ($body, $secrets, $t) = @_;
    $t //= int time;
    my @s = ref $secrets ? @$secrets : ($secrets);
    return join ',', "t=$t", map { 'v1=' . sign($body, $_, $t) } @s;
}

# post_event($url, $body,
#     secret    => 'whsec_..' | [secrets]   one v1 per secret
#     t         => unix time                 (default now)
#     signature => '...'                     the header verbatim instead
#     no_signature => 1                      send no Stripe-Signature
#     headers   => {...}                     extra headers
#     method    => 'POST', timeout => s)
sub post_event {
    my ($url, $body, %o) = @_;
    my %h = ('Content-Type' => 'application/json; charset=utf-8',
             %{ $o{headers} || {} });
    if (defined $o{signature}) {
        $h{'Stripe-Signature'} = $o{signature};
    } elsif (!$o{no_signature}) {
        die "post_event: no secret" unless defined $o{secret};
        $h{'Stripe-Signature'} = sign_header($body, $o{secret}, $o{t});
    }
    return http_request($o{method} || 'POST', $url, headers => \%h,
                        content => $body, timeout => $o{timeout});
}

# Concurrent requests from forked children. Each job is a hash:
#   { url => .., body => .., secret => .., t => .., headers => {..},
#     signature => .., no_signature => 1, method => .. }
# Signing happens in the child right before sending.
#   my $h = post_async(\@jobs, concurrency => 50);   # returns at once
#   my $results = $h->wait($timeout);   # [ {status, content, json,
#                                       #    headers, elapsed}, ... ]
sub post_async {
    my ($jobs, %o) = @_;
    my $c = $o{concurrency} || 10;
    $c = @$jobs if $c > @$jobs;
    my $dir = temp_dir('par');
    my @pids;
    for my $k (0 .. $c - 1) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            alarm 0;
            $SIG{ALRM} = $SIG{INT} = $SIG{TERM} = 'DEFAULT';
            open my $out, '>>:raw', "$dir/res.$k" or POSIX::_exit(1);
            for (my $i = $k; $i < @$jobs; $i += $c) {
                my $j = $jobs->[$i];
                my $r = eval {
                    post_event($j->{url}, $j->{body} // '',
                        map { defined $j->{$_} ? ($_ => $j->{$_}) : () }
                        qw(secret t signature no_signature headers method
                           timeout));
                } || { status => 599, content => "harness: $@" };
                my $rec = { i => $i, status => $r->{status},
                    content => $r->{content}, elapsed => $r->{elapsed},
                    headers => $r->{headers} };
                syswrite $out, json_encode($rec) . "\n";
            }
            close $out;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    return bless { pids => \@pids, dir => $dir, n => scalar @$jobs,
                   t0 => time }, 'StripeSync::Test::Async';
}

sub post_parallel {
    my ($jobs, %o) = @_;
    return post_async($jobs, %o)->wait($o{timeout});
}

# Prometheus text -> { 'name{label="v",...}' => value, name => value }.
# Labels are sorted by name in the key.
sub parse_prometheus {
    my ($text) = @_;
    my %m;
    for my $line (split /\n/, $text // '') {
        next if $line =~ /^\s*(#|$)/;
        $line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*?)\})?\s+(\S+)/ or next;
        my ($name, $labels, $v) = ($1, $2, $3);
        my $key = $name;
        if (defined $labels && length $labels) {
            my @l;
            while ($labels =~ /([a-zA-Z_]\w*)\s*=\s*"((?:[^"\\]|\\.)*)"/g) {
                push @l, [$1, $2];
            }
            $key .= '{' . join(',', map { qq($_->[0]="$_->[1]") }
                                    sort { $a->[0] cmp $b->[0] } @l) . '}';
        }
        $v = 9**9**9 if $v eq '+Inf';
        $m{$key} = $v + 0;
    }
    return \%m;
}

# -------------------------------------------------------------- events ---

# make_event(type => 'invoice.paid', object => {...}, id => .., created => ..,
#            livemode => 0|1, api_version => .., extra => {top-level})
# -> JSON bytes (canonical). Always a scalar (safe inside argument lists);
# pass id => unique_id('evt') when the test needs the id.
sub make_event {
    my (%o) = @_;
    my $id = $o{id} // unique_id('evt');
    my %ev = (
        id          => $id,
        object      => 'event',
        api_version => $o{api_version} // '2025-03-31.basil',
        created     => $o{created} // int(time),
        livemode    => $o{livemode} ? JSON::PP::true : JSON::PP::false,
        type        => $o{type} // die('make_event: no type'),
        data        => { object => $o{object} // {} },
        pending_webhooks => 1,
        request     => { id => undef, idempotency_key => undef },
        %{ $o{extra} || {} },
    );
    return json_encode(\%ev);
}

# The "object" of a fixture: t/fixtures/stripe/event-data/<name>.data.json,
# or objects/resource.<name>.json when no such event-data file exists.
sub fixture_object {
    my ($name) = @_;
    my $base = "$REPO/t/fixtures/stripe";
    if (-f "$base/event-data/$name.data.json") {
        return json_decode(slurp("$base/event-data/$name.data.json"))->{object};
    }
    my $s = slurp("$base/objects/resource.$name.json")
        // die "fixture_object: no fixture $name";
    return json_decode($s);
}

# --------------------------------------------------------------- redis ---

# start_redis(password => 'pw', debug => 1 (DEBUG command), unixsocket => 1,
#             args => [...], port => N,
#             appendonly => 'always' | 'everysec')  AOF persistence: then
#             $r->restart(kill => 1) is a crash (SIGKILL) and a restart on
#             the same port and dir that reloads the AOF
sub start_redis { StripeSync::Test::Redis->new(@_) }

# -------------------------------------------------------------- nginx ---

# start_nginx(
#   conf    => text: http-level if it contains a "server {" (use %%PORT%%
#              in its listen), else the body of the default server
#   http    => text placed in http {} before the server
#   main    => text at main level
#   full    => the whole nginx.conf instead (placeholders still work)
#   workers => 1, module => 1 (load_module the .so), listen_opts => '',
#   log_level => 'info')
# Placeholders in any text: %%PORT%% %%PREFIX%% %%MODULE%%.
# The default server also has /__harness_ping (204) and /__harness_stub
# (stub_status).
sub start_nginx { StripeSync::Test::Nginx->new(@_) }

# nginx -t on a config built like start_nginx's; a single argument is the
# conf option. Returns (exit code, stdout+stderr+error.log).
sub nginx_t {
    my (%o) = @_ == 1 ? (conf => $_[0]) : @_;
    my $prefix = temp_dir('nginx-t');
    my $port = free_port();
    spew("$prefix/nginx.conf",
         StripeSync::Test::Nginx::_build_conf(%o, prefix => $prefix,
                                              port => $port));
    my @cmd = ($NGINX_BIN, '-t', '-p', "$prefix/", '-c', "$prefix/nginx.conf",
               '-e', "$prefix/error.log");
    unshift @cmd, _valgrind_cmd($prefix, 0) if valgrind_mode();
    my $pid = _spawn(cmd => \@cmd, log => "$prefix/stderr.log");
    my $st = _reap($pid, tmo(30));
    if (!defined $st) {
        kill 'KILL', $pid;
        _reap($pid, 5);
        die "nginx -t did not finish";
    }
    my $out = (slurp("$prefix/stderr.log") // '') . (slurp("$prefix/error.log") // '');
    _vg_test("nginx -t", $prefix) if valgrind_mode();
    return ($st >> 8, $out);
}

sub _valgrind_cmd {
    my ($prefix, $exitcode) = @_;
    return ('valgrind', '--trace-children=yes', '--num-callers=40', '--vgdb=no',
        '--leak-check=full', '--show-leak-kinds=definite',
        '--keep-debuginfo=yes',    # the .so is dlclose()d before exit
        '--errors-for-leak-kinds=definite',
        ($exitcode ? ("--error-exitcode=$exitcode") : ()),
        "--log-file=$prefix/vg.%p.log");
}

my $OUR_FRAME = qr/(?:at|by) 0x[0-9A-Fa-f]+: (?:ngx_http_stripe_sync\w*|stripe_sig\w*|action_\w+)/;

# Valgrind error blocks with one of our frames, from $prefix/vg.*.log.
sub _vg_errors {
    my ($prefix) = @_;
    my @errs;
    for my $f (sort glob "$prefix/vg.*.log") {
        my $log = slurp($f) // next;
        my @block;
        for my $line (split /\n/, $log . "\n==0== \n") {
            if ($line =~ /^==\d+==\s*$/) {
                my $b = join "\n", @block;
                push @errs, "$f:\n$b" if $b =~ $OUR_FRAME;
                @block = ();
            } else {
                push @block, $line;
            }
        }
    }
    return @errs;
}

sub _vg_test {
    my ($what, $prefix, $in_end) = @_;
    my @e = _vg_errors($prefix);
    if ($in_end) {
        # after done_testing: no more tests, only diag (the caller fails)
        Test::More::diag("valgrind: errors in module frames ($what):\n"
                         . join("\n\n", @e)) if @e;
        return !@e;
    }
    Test::More::ok(!@e, "valgrind: no errors in module frames ($what)")
        or Test::More::diag(join "\n\n", @e);
    return !@e;
}

# ---------------------------------------------------------- reporting ---

# diag() a response and, with $ng, the tail of its error.log.
sub diag_response {
    my ($res, $ng) = @_;
    my $h = $res->{headers} || {};
    Test::More::diag("response: $res->{status} "
        . ($res->{reason} // '') . "\n"
        . join('', map { "  $_: $h->{$_}\n" } sort keys %$h)
        . "  body: " . substr($res->{content} // '', 0, 2000));
    Test::More::diag("error.log tail:\n" . $ng->error_log_tail(30)) if $ng;
}

# Stops every nginx (valgrind and crash checks as tests), every process
# and redis, then done_testing.
#   finish(killed => [pids])   workers the test killed itself with SIGKILL
#                              (Nginx->kill_worker): their "exited on
#                              signal 9" is not a crash
sub finish {
    my (%o) = @_;
    my %killed = map { $_ => 1 } @{ $o{killed} || [] };
    $_->stop for @NGINX;    # also checks valgrind logs, once per nginx
    for my $ng (@NGINX) {
        my @crash = grep { /exited on signal/
                           && !(/process (\d+) exited on signal 9\b/ && $killed{$1}) }
                    split /\n/, $ng->error_log;
        Test::More::ok(!@crash, "no nginx process crashed ($ng->{prefix})")
            or Test::More::diag(join "\n", @crash);
    }
    for my $p (@PROCS) { $p->stop if $p->alive }
    Test::More::done_testing();
}

END {
    if ($$ == $ORIG_PID) {
        my $rc = $?;
        alarm 0;
        for my $ng (@NGINX) {
            my $ok = eval { $ng->stop(in_end => 1) };
            $rc ||= 1 unless $ok;
        }
        for my $p (reverse @PROCS) { eval { $p->kill } }
        if ($GUARD_PID) {
            kill 'KILL', $GUARD_PID;
            waitpid($GUARD_PID, 0);
        }
        $? = $rc;    # the cleanup's waitpid calls changed it
    }
}

# ==================================================================== #

package StripeSync::Test::Process;

use strict;
use warnings;
use Time::HiRes qw(time sleep);

sub pid { $_[0]{pid} }
sub output { StripeSync::Test::slurp($_[0]{log}) // '' }

sub alive {
    my ($self) = @_;
    return 0 unless $self->{pid};
    my $r = waitpid($self->{pid}, POSIX::WNOHANG());
    if ($r == $self->{pid} || $r < 0) {
        $self->{status} = $?;
        $self->{pid_done} = delete $self->{pid};
        return 0;
    }
    return 1;
}

# Waits for exit; returns the wait status, or undef on timeout.
sub wait_exit {
    my ($self, $timeout) = @_;
    return $self->{status} unless $self->{pid};
    my $st = StripeSync::Test::_reap($self->{pid}, $timeout // StripeSync::Test::tmo(10));
    if (defined $st) {
        $self->{status} = $st;
        $self->{pid_done} = delete $self->{pid};
    }
    return $st;
}

# sig (default TERM), then KILL of the process group after timeout.
sub stop {
    my ($self, %o) = @_;
    return $self->{status} unless $self->{pid};
    CORE::kill $o{sig} || 'TERM', $self->{pid};
    my $st = $self->wait_exit($o{timeout} // StripeSync::Test::tmo(5));
    return $st if defined $st;
    return $self->kill;
}

sub kill {
    my ($self) = @_;
    return $self->{status} unless $self->{pid};
    my $pid = $self->{pid};
    CORE::kill 'KILL', -$pid;    # its process group (setpgrp in _spawn)
    CORE::kill 'KILL', $pid;
    return $self->wait_exit(5);
}

# ==================================================================== #

package StripeSync::Test::Async;

use strict;
use warnings;
use Time::HiRes qw(time sleep);

# Collects the results in job order; jobs not finished by the deadline get
# status 599.
sub wait {
    my ($self, $timeout) = @_;
    $timeout //= StripeSync::Test::tmo(60);
    my $deadline = time + $timeout;
    my %left = map { $_ => 1 } @{ $self->{pids} };
    while (%left && time < $deadline) {
        for my $pid (keys %left) {
            delete $left{$pid} if waitpid($pid, POSIX::WNOHANG()) != 0;
        }
        sleep 0.02 if %left;
    }
    for my $pid (keys %left) {
        CORE::kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    my @res;
    for my $f (glob "$self->{dir}/res.*") {
        open my $fh, '<:raw', $f or next;
        while (my $l = <$fh>) {
            my $r = eval { StripeSync::Test::json_decode($l) } or next;
            $r->{json} = StripeSync::Test::res_json($r);
            $res[$r->{i}] = $r;
        }
    }
    for my $i (0 .. $self->{n} - 1) {
        $res[$i] //= { i => $i, status => 599,
                       content => 'harness: no result (child killed?)' };
    }
    return \@res;
}

# ==================================================================== #

package StripeSync::Test::RedisError;

use overload '""' => sub { $_[0]{message} }, fallback => 1;

# ==================================================================== #

package StripeSync::Test::RESP;

# One RESP2 connection, binary safe.

use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use Time::HiRes qw(time);

sub new {
    my ($class, %o) = @_;
    my $sock = $o{path}
        ? IO::Socket::UNIX->new(Peer => $o{path})
        : IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $o{port},
              Proto => 'tcp', Timeout => $o{timeout} // 2);
    die "redis: cannot connect to " . ($o{path} // $o{port}) . ": $!\n"
        unless $sock;
    binmode $sock;
    return bless { sock => $sock, buf => '',
                   timeout => $o{timeout} // StripeSync::Test::tmo(10) }, $class;
}

sub encode {
    my (@args) = @_;
    my $s = '*' . scalar(@args) . "\r\n";
    for my $a (@args) {
        my $b = "$a";
        utf8::encode($b) if utf8::is_utf8($b);
        $s .= '$' . length($b) . "\r\n$b\r\n";
    }
    return $s;
}

sub send {
    my ($self, @args) = @_;
    my $data = encode(@args);
    while (length $data) {
        my $n = syswrite $self->{sock}, $data;
        die "redis: write: $!\n" unless defined $n;
        substr($data, 0, $n, '');
    }
    return $self;
}

sub _fill {
    my ($self, $deadline) = @_;
    my $left = $deadline - time;
    die "redis: reply timeout\n" if $left <= 0;
    IO::Select->new($self->{sock})->can_read($left)
        or die "redis: reply timeout\n";
    my $n = sysread $self->{sock}, $self->{buf}, 65536, length $self->{buf};
    die "redis: connection closed\n" unless $n;
}

sub _line {
    my ($self, $deadline) = @_;
    my $i;
    $self->_fill($deadline) while ($i = index $self->{buf}, "\r\n") < 0;
    my $l = substr $self->{buf}, 0, $i;
    substr($self->{buf}, 0, $i + 2, '');
    return $l;
}

# The next reply: strings, integers, undef (nil), array refs, or a
# StripeSync::Test::RedisError for -ERR replies.
sub read_reply {
    my ($self, $timeout) = @_;
    my $deadline = time + ($timeout // $self->{timeout});
    return $self->_reply($deadline);
}

sub _reply {
    my ($self, $deadline) = @_;
    my $l = $self->_line($deadline);
    my ($t, $r) = (substr($l, 0, 1), substr($l, 1));
    return $r if $t eq '+';
    return $r + 0 if $t eq ':';
    return bless { message => $r }, 'StripeSync::Test::RedisError' if $t eq '-';
    if ($t eq '$') {
        return undef if $r < 0;
        $self->_fill($deadline) while length $self->{buf} < $r + 2;
        my $b = substr $self->{buf}, 0, $r;
        substr($self->{buf}, 0, $r + 2, '');
        return $b;
    }
    if ($t eq '*') {
        return undef if $r < 0;
        return [ map { $self->_reply($deadline) } 1 .. $r ];
    }
    die "redis: bad reply line '$l'\n";
}

sub command {
    my ($self, @args) = @_;
    $self->send(@args);
    return $self->read_reply;
}

sub close { close $_[0]{sock} }

# ==================================================================== #

package StripeSync::Test::Redis;

use strict;
use warnings;
use Time::HiRes qw(time sleep);

sub new {
    my ($class, %o) = @_;
    my $self = bless { %o }, $class;
    $self->{port} //= StripeSync::Test::free_port();
    $self->{dir} = StripeSync::Test::temp_dir('redis');
    $self->{unixsocket} = "$self->{dir}/redis.sock" if $o{unixsocket};
    $self->start;
    push @PROCS, $self;
    return $self;
}

sub port { $_[0]{port} }
sub dir  { $_[0]{dir} }
sub unixsocket { $_[0]{unixsocket} }
sub password { $_[0]{password} }

# "127.0.0.1:PORT" for stripe_sync_redis
sub addr { "127.0.0.1:$_[0]{port}" }

sub start {
    my ($self) = @_;
    die "redis already running" if $self->{pid};
    my @cmd = ('redis-server', '--port', $self->{port}, '--bind', '127.0.0.1',
        '--save', '', '--appendonly', 'no', '--dir', $self->{dir},
        '--logfile', "$self->{dir}/redis.log", '--daemonize', 'no');
    push @cmd, '--requirepass', $self->{password} if defined $self->{password};
    push @cmd, '--enable-debug-command', 'yes' if $self->{debug};
    # appendonly => 'always' | 'everysec': AOF on (after --appendonly no:
    # the later setting wins), so kill + start on the same dir reloads it
    push @cmd, '--appendonly', 'yes', '--appendfsync', $self->{appendonly}
        if $self->{appendonly};
    push @cmd, '--unixsocket', $self->{unixsocket}, '--unixsocketperm', '777'
        if $self->{unixsocket};
    push @cmd, @{ $self->{args} || [] };
    $self->{pid} = StripeSync::Test::_spawn(cmd => \@cmd,
        log => "$self->{dir}/redis.out");
    my $ok = StripeSync::Test::wait_until(sub {
        return 0 unless StripeSync::Test::_alive($self->{pid});
        my $r = eval {
            my $c = StripeSync::Test::RESP->new(port => $self->{port},
                                                timeout => 1);
            $c->command('PING');
        };
        # -NOAUTH also means it is up
        return defined $r;
    }, StripeSync::Test::tmo(10));
    die "redis-server did not start on $self->{port}:\n"
        . (StripeSync::Test::slurp("$self->{dir}/redis.log") // '')
        . (StripeSync::Test::slurp("$self->{dir}/redis.out") // '') unless $ok;
    return $self;
}

sub alive { StripeSync::Test::_alive($_[0]{pid}) }

# Graceful (SIGTERM), KILL after the deadline.
sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    CORE::kill 'TERM', $pid;
    return if defined StripeSync::Test::_reap($pid, StripeSync::Test::tmo(5));
    CORE::kill 'KILL', -$pid;
    CORE::kill 'KILL', $pid;
    StripeSync::Test::_reap($pid, 5);
}

# SIGKILL: Redis gone at once, connections reset.
sub kill {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    CORE::kill 'KILL', -$pid;
    CORE::kill 'KILL', $pid;
    StripeSync::Test::_reap($pid, 5);
}

# Stops (if running) and starts again on the same port; data is gone
# (unless appendonly: same dir, the AOF is loaded again; kill => 1 for a
# SIGKILL first).
sub restart {
    my ($self, %o) = @_;
    $o{kill} ? $self->kill : $self->stop;
    $self->start;
}

# A new authenticated connection (db selected with db => N).
sub connect {
    my ($self, %o) = @_;
    my $c = StripeSync::Test::RESP->new(port => $self->{port},
                                        timeout => $o{timeout});
    if (defined $self->{password}) {
        my $r = $c->command('AUTH', $self->{password});
        die "redis AUTH: $r\n" if ref $r eq 'StripeSync::Test::RedisError';
    }
    if ($o{db}) {
        my $r = $c->command('SELECT', $o{db});
        die "redis SELECT: $r\n" if ref $r eq 'StripeSync::Test::RedisError';
    }
    return $c;
}

# One command on a fresh connection; dies on an error reply.
sub cmd {
    my ($self, @args) = @_;
    return $self->cmd_db(0, @args);
}

sub cmd_db {
    my ($self, $db, @args) = @_;
    my $c = $self->connect(db => $db);
    my $r = $c->command(@args);
    $c->close;
    die "redis $args[0]: $r\n" if ref $r eq 'StripeSync::Test::RedisError';
    return $r;
}

# Sends a command without waiting (e.g. DEBUG SLEEP 3): returns the
# connection; ->read_reply($timeout) later if wanted.
sub cmd_nowait {
    my ($self, @args) = @_;
    my $c = $self->connect;
    $c->send(@args);
    return $c;
}

# True when Redis does not answer PING within $within seconds (i.e. it is
# busy in DEBUG SLEEP).
sub stalled {
    my ($self, $within) = @_;
    my $r = eval { $self->connect(timeout => $within // 0.2)->command('PING') };
    return !defined $r;
}

# redis-cli --raw output, as text.
sub cli {
    my ($self, @args) = @_;
    my @cmd = ('redis-cli', '-p', $self->{port}, '--raw');
    push @cmd, '-a', $self->{password}, '--no-auth-warning'
        if defined $self->{password};
    open my $fh, '-|', @cmd, @args or die "redis-cli: $!";
    local $/;
    my $out = <$fh>;
    close $fh;
    return $out // '';
}

# "{P}:suffix"
sub key {
    my ($self, $suffix, $prefix) = @_;
    return '{' . ($prefix // 'stripe_sync') . '}:' . $suffix;
}

# The queue's records, decoded, oldest first.
#   $r->queue(prefix => 'stripe_sync', db => 0)
sub queue {
    my ($self, %o) = @_;
    my $l = $self->cmd_db($o{db} // 0, 'LRANGE',
                          $self->key('queue', $o{prefix}), 0, -1) || [];
    return [ map { StripeSync::Test::json_decode($_) } reverse @$l ];
}

sub queue_raw {
    my ($self, %o) = @_;
    my $l = $self->cmd_db($o{db} // 0, 'LRANGE',
                          $self->key('queue', $o{prefix}), 0, -1) || [];
    return [ reverse @$l ];
}

sub queue_len {
    my ($self, %o) = @_;
    return $self->cmd_db($o{db} // 0, 'LLEN', $self->key('queue', $o{prefix}));
}

# HGETALL as a hash ref.
sub hgetall {
    my ($self, $key, %o) = @_;
    my $l = $self->cmd_db($o{db} // 0, 'HGETALL', $key) || [];
    return { @$l };
}

sub flushall { $_[0]->cmd('FLUSHALL') }

# ==================================================================== #

package StripeSync::Test::Nginx;

use strict;
use warnings;
use Time::HiRes qw(time sleep);

sub new {
    my ($class, %o) = @_;
    my $self = bless { %o }, $class;
    $self->{workers} //= 1;
    $self->{module} //= 1;
    $self->{prefix} = StripeSync::Test::temp_dir('nginx');
    $self->{port} //= StripeSync::Test::free_port();
    $self->write_conf;
    push @NGINX, $self;
    $self->start;
    return $self;
}

sub port   { $_[0]{port} }
sub prefix { $_[0]{prefix} }
sub pid    { $_[0]{pid} }
sub url    { "http://127.0.0.1:$_[0]{port}" . ($_[1] // '/') }
sub conf_file { "$_[0]{prefix}/nginx.conf" }

sub _subst {
    my ($text, %o) = @_;
    return '' unless defined $text;
    $text =~ s/%%PORT%%/$o{port}/g;
    $text =~ s/%%PREFIX%%/$o{prefix}/g;
    my $m = StripeSync::Test::module_path();
    $text =~ s/%%MODULE%%/$m/g;
    return $text;
}

sub _build_conf {
    my (%o) = @_;
    my $p = $o{prefix};
    return _subst($o{full}, %o) if defined $o{full};
    my $module = $o{module} // 1;
    my $conf = _subst($o{conf}, %o);
    my $http = _subst($o{http}, %o);
    my $main = _subst($o{main}, %o);
    my $lopts = $o{listen_opts} // '';
    my $server = $conf =~ /(^|[\s;{}])server\s*\{/ ? $conf : <<"EOS";
    server {
        listen 127.0.0.1:$o{port} $lopts;
        server_name localhost;
        location = /__harness_ping { access_log off; return 204; }
        location = /__harness_stub { access_log off; stub_status; }
$conf
    }
EOS
    my $load = $module ? "load_module " . StripeSync::Test::module_path() . ";\n" : '';
    my $workers = $o{workers} // 1;
    my $level = $o{log_level} // 'info';
    return <<"EOC";
$load
worker_processes $workers;
daemon off;
master_process on;
pid $p/nginx.pid;
error_log $p/error.log $level;
$main

events {
    worker_connections 1024;
}

http {
    access_log $p/access.log;
    default_type application/octet-stream;
    client_body_temp_path $p/client_body_temp;
    proxy_temp_path $p/proxy_temp;
    fastcgi_temp_path $p/fastcgi_temp;
    uwsgi_temp_path $p/uwsgi_temp;
    scgi_temp_path $p/scgi_temp;

$http

$server
}
EOC
}

# (Re)writes nginx.conf; options as start_nginx's, merged over the current.
sub write_conf {
    my ($self, %o) = @_;
    @{$self}{keys %o} = values %o;
    StripeSync::Test::spew($self->conf_file, _build_conf(%$self));
}

sub _has_ping { !defined $_[0]{full} && ($_[0]{conf} // '') !~ /(^|[\s;{}])server\s*\{/ }

sub start {
    my ($self) = @_;
    my $p = $self->{prefix};
    my @cmd = ($NGINX_BIN, '-p', "$p/", '-c', $self->conf_file,
               '-e', "$p/error.log");
    unshift @cmd, StripeSync::Test::_valgrind_cmd($p, 66)
        if StripeSync::Test::valgrind_mode();
    $self->{pid} = StripeSync::Test::_spawn(cmd => \@cmd,
                                            log => "$p/stderr.log");
    my $why = '';
    my $ok = StripeSync::Test::wait_until(sub {
        if (!StripeSync::Test::_alive($self->{pid})) {
            $why = 'nginx exited';
            return 'dead';
        }
        my @w = $self->worker_pids;
        if (@w < $self->{workers}) {
            $why = "workers up: " . scalar(@w);
            return 0;
        }
        return $self->_ping;
    }, StripeSync::Test::tmo(10));
    if (!$ok || $ok eq 'dead') {
        my $err = "nginx did not start ($why):\n"
            . (StripeSync::Test::slurp("$p/stderr.log") // '')
            . $self->error_log_tail(30);
        $self->_kill_all;
        die $err;
    }
    return $self;
}

sub _ping {
    my ($self) = @_;
    if ($self->_has_ping) {
        my $r = HTTP::Tiny->new(timeout => StripeSync::Test::tmo(2),
                                keep_alive => 0)
            ->get($self->url('/__harness_ping'));
        return $r->{status} == 204;
    }
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $self->{port}, Proto => 'tcp', Timeout => 1);
    return $s ? 1 : 0;
}

# The worker processes (children of the master), sorted.
sub worker_pids {
    my ($self) = @_;
    return () unless $self->{pid};
    return StripeSync::Test::_children_of($self->{pid});
}

sub error_log { StripeSync::Test::slurp("$_[0]{prefix}/error.log") // '' }

# Byte offset to pass to error_log_since / alerts.
sub error_log_mark { -s "$_[0]{prefix}/error.log" // 0 }

sub error_log_since {
    my ($self, $mark) = @_;
    return substr($self->error_log, $mark // 0);
}

sub error_log_tail {
    my ($self, $n) = @_;
    my @l = split /\n/, $self->error_log;
    @l = @l[-$n .. -1] if @l > $n;
    return join("\n", @l) . "\n";
}

# [alert], [crit] and [emerg] lines (since $mark).
sub alerts {
    my ($self, $mark) = @_;
    return grep { /\[(alert|crit|emerg)\]/ }
        split /\n/, $self->error_log_since($mark);
}

sub access_log {
    my ($self, $name) = @_;
    return StripeSync::Test::slurp("$self->{prefix}/" . ($name // 'access.log')) // '';
}

sub access_log_lines {
    my ($self, $name) = @_;
    return split /\n/, $self->access_log($name);
}

# Parsed stub_status (active, accepts, handled, requests, reading, writing,
# waiting) from /__harness_stub.
sub stub_status {
    my ($self) = @_;
    my $r = HTTP::Tiny->new(timeout => StripeSync::Test::tmo(2),
                            keep_alive => 0)->get($self->url('/__harness_stub'));
    return undef unless $r->{status} == 200;
    my $c = $r->{content};
    my %s;
    @s{qw(active)} = $c =~ /Active connections:\s*(\d+)/;
    @s{qw(accepts handled requests)} = $c =~ /\n\s*(\d+)\s+(\d+)\s+(\d+)/;
    @s{qw(reading writing waiting)} =
        $c =~ /Reading:\s*(\d+)\s+Writing:\s*(\d+)\s+Waiting:\s*(\d+)/;
    return \%s;
}

# nginx -s reload (optionally with new conf options, see write_conf); waits
# until a full set of new workers is up (and, with wait_old => 1, until the
# old ones have exited). Dies with the error.log on failure.
sub reload {
    my ($self, %o) = @_;
    my $wait_old = delete $o{wait_old};
    $self->write_conf(%o) if %o;
    my %old = map { $_ => 1 } $self->worker_pids;
    $self->{old_workers} = [ sort keys %old ];
    my $mark = $self->error_log_mark;
    my $p = $self->{prefix};
    my $out = `$NGINX_BIN -s reload -p $p/ -c $p/nginx.conf -e $p/error.log 2>&1`;
    die "nginx -s reload failed: $out\n" . $self->error_log_tail(20) if $?;
    my $ok = StripeSync::Test::wait_until(sub {
        return 'emerg' if $self->error_log_since($mark) =~ /\[emerg\]/;
        my @new = grep { !$old{$_} } $self->worker_pids;
        return @new >= $self->{workers} && $self->_ping;
    }, StripeSync::Test::tmo(10));
    die "reload: new workers not up ($ok):\n" . $self->error_log_since($mark)
        if !$ok || $ok eq 'emerg';
    if ($wait_old) {
        $self->wait_pids_gone($self->{old_workers})
            or die "reload: old workers did not exit:\n" . $self->error_log_tail(20);
    }
    return $self;
}

# The workers that were running before the last reload.
sub old_workers { @{ $_[0]{old_workers} || [] } }

# kill -9 one worker (the given pid, else the first): the master respawns
# it. Waits for a full set of workers again; returns the killed pid (pass
# it to finish(killed => [...])). Dies when no worker comes back.
sub kill_worker {
    my ($self, $pid) = @_;
    my @w = $self->worker_pids;
    $pid //= $w[0];
    die "kill_worker: no worker\n" unless $pid;
    CORE::kill 'KILL', $pid;
    my $ok = StripeSync::Test::wait_until(sub {
        my @now = $self->worker_pids;
        !grep({ $_ == $pid } @now) && @now >= $self->{workers};
    }, StripeSync::Test::tmo(10));
    die "kill_worker: no new worker after $pid:\n" . $self->error_log_tail(10)
        unless $ok;
    push @{ $self->{killed_workers} }, $pid;
    return $pid;
}

# The workers kill_worker killed.
sub killed_workers { @{ $_[0]{killed_workers} || [] } }

# Waits until the given pids are gone (e.g. old_workers after reload).
sub wait_pids_gone {
    my ($self, $pids, $timeout) = @_;
    return StripeSync::Test::wait_until(sub {
        !grep { StripeSync::Test::_alive($_) } @$pids
    }, $timeout // StripeSync::Test::tmo(10));
}

# Graceful shutdown (SIGQUIT, as nginx -s quit); waits for the master and
# its workers to exit. Returns the master's wait status, or undef on timeout
# (then the processes are left running; stop() kills them).
sub quit {
    my ($self, $timeout) = @_;
    return $self->{status} unless $self->{pid};
    my @w = $self->worker_pids;
    CORE::kill 'QUIT', $self->{pid};
    my $st = StripeSync::Test::_reap($self->{pid}, $timeout // StripeSync::Test::tmo(10));
    return undef unless defined $st;
    $self->{status} = $st;
    $self->{pid_done} = delete $self->{pid};
    $self->wait_pids_gone(\@w, StripeSync::Test::tmo(5));
    return $st;
}

sub _kill_all {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    my @w = StripeSync::Test::_children_of($pid);
    CORE::kill 'KILL', -$pid;
    CORE::kill 'KILL', $pid, @w;
    $self->{status} = StripeSync::Test::_reap($pid, 5);
    $self->{pid_done} = $pid;
}

# quit, then KILL; in valgrind mode checks the vg logs (a test, or diag
# when called from END).
sub stop {
    my ($self, %o) = @_;
    if ($self->{pid}) {
        my $st = $self->quit(StripeSync::Test::tmo($o{in_end} ? 3 : 10));
        $self->_kill_all unless defined $st;
    }
    return 1 unless StripeSync::Test::valgrind_mode() && !$self->{vg_checked}++;
    return StripeSync::Test::_vg_test("nginx $self->{prefix}", $self->{prefix},
                                      $o{in_end});
}

1;
