# The Debian packages (make deb, docs/packaging.md) on this machine: built,
# installed with apt-get, checked (files, the modules-enabled link, nginx
# loading the packaged module and queueing a signed event, the system user,
# /etc/stripe-sync's modes, stripe-sync check and stats as that user, the
# man pages), removed, then purged without a trace.
#
# It changes the machine while it runs, so it needs root, and it refuses to
# run where stripe-sync is already installed (packaged or by make install):
# it must not purge an admin's configuration. Whatever happens, the END
# block purges both packages and deletes the stripe-sync user it created.
#
#   STRIPE_SYNC_DEBS=dir   use the .deb files in dir instead of make deb

use strict;
use warnings;

BEGIN { $ENV{STRIPE_SYNC_TEST_TIMEOUT} //= 300 }    # make deb is ~40 s

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use POSIX ();
use Test::More;
use StripeSync::Test;

my @PKGS = qw(libnginx-mod-http-stripe-sync stripe-sync);
my $USER = 'stripe-sync';

my $MOD_SO    = '/usr/lib/nginx/modules/ngx_http_stripe_sync_module.so';
my $MOD_CONF  = '/usr/share/nginx/modules-available/mod-http-stripe-sync.conf';
my $MOD_LINK  = '/etc/nginx/modules-enabled/50-mod-http-stripe-sync.conf';
my $BIN       = '/usr/bin/stripe-sync';
my $ETC       = '/etc/stripe-sync';
my $CONF      = "$ETC/stripe-sync.conf";
my $UNIT      = '/lib/systemd/system/stripe-sync.service';
my $DOC       = '/usr/share/doc/stripe-sync';
my @MANS      = ('/usr/share/man/man1/stripe-sync.1.gz',
                 '/usr/share/man/man5/stripe-sync.conf.5.gz',
                 '/usr/share/man/man8/ngx_http_stripe_sync_module.8.gz');
my @OWNED     = ($MOD_SO, $MOD_CONF, $MOD_LINK, "$MOD_LINK.removed", $BIN,
                 $ETC, $UNIT, $DOC, '/usr/share/doc/libnginx-mod-http-stripe-sync',
                 @MANS);

plan skip_all => 'needs root: it installs and purges packages' if $> != 0;
for my $tool (qw(dpkg dpkg-query apt-get)) {
    plan skip_all => "$tool is missing: not a Debian system"
        unless grep { -x "$_/$tool" } split /:/, $ENV{PATH};
}

sub pkg_status {
    my ($p) = @_;
    my $s = `dpkg-query -W -f='\${Status}' $p 2>/dev/null`;
    return $s =~ /\S/ ? $s : 'not-installed';
}

sub installed { pkg_status($_[0]) =~ /\binstalled$/ }
sub present   { pkg_status($_[0]) !~ /not-installed$/ }    # config-files too

for my $p (@PKGS) {
    plan skip_all => "$p is already on this machine ("
        . pkg_status($p) . "): not touching it" if present($p);
}
for my $path (@OWNED) {
    plan skip_all => "$path exists (make install?): not touching it"
        if -e $path || -l $path;
}

my $root = repo_root();
my $user_existed = defined getpwnam($USER);
my $group_existed = defined getgrnam($USER);
my $installing;

$ENV{DEBIAN_FRONTEND} = 'noninteractive';
my @APT = ('apt-get', '-y', '-q', '-o', 'DPkg::Lock::Timeout=120');

sub run {
    my (@cmd) = @_;
    my $out = '';
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec @cmd or POSIX::_exit(127);
    }
    local $/;
    $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}

# the machine as it was, whatever happened
END {
    my $rc = $?;
    if ($installing) {
        my @left = grep { present($_) } @PKGS;
        if (@left) {
            run(@APT, 'purge', @left);
            run('dpkg', '--purge', '--force-all', grep { present($_) } @PKGS);
        }
        unless ($user_existed) {
            system("userdel $USER >/dev/null 2>&1") if defined getpwnam($USER);
            system("groupdel $USER >/dev/null 2>&1")
                if !$group_existed && defined getgrnam($USER);
        }
    }
    $? = $rc;
}

# ------------------------------------------------------------- build ---

my $debs = $ENV{STRIPE_SYNC_DEBS};
if (!$debs) {
    $debs = "$root/build/deb";
    local @ENV{qw(MAKEFLAGS MFLAGS MAKELEVEL)};    # not the outer make's jobs
    delete @ENV{qw(MAKEFLAGS MFLAGS MAKELEVEL)};
    my ($st, $out) = run('make', '-s', '-C', $root, 'deb');
    is($st, 0, 'make deb builds the packages, lintian finds no error')
        or diag(substr($out, -4000)), BAIL_OUT('no packages');
    unlike($out, qr/^E: /m, 'no lintian error');
}

my %deb;
for my $p (@PKGS) {
    my @f = glob "$debs/${p}_*.deb";
    is(scalar @f, 1, "one $p .deb in $debs") or BAIL_OUT("no $p .deb");
    $deb{$p} = $f[0];
}

sub field { my ($p, $f) = @_; my $v = `dpkg-deb -f $deb{$p} $f`; chomp $v; $v }

my ($abi) = (slurp('/usr/share/nginx/src/debian/libnginx-mod.abisubstvars') // '')
            =~ /^nginx:abi=(\S+)/m;
like(field('libnginx-mod-http-stripe-sync', 'Depends'), qr/(?:^|, )\Q$abi\E(?:,|$)/,
     "the module depends on the ABI of the nginx it was built for ($abi)")
    if $abi;
like(field('stripe-sync', 'Depends'), qr/\badduser\b/, 'stripe-sync depends on adduser');

my ($tool_version) = (slurp("$root/src/main.c") // '') =~ /STRIPE_SYNC_VERSION\s+"([^"]+)"/;
is(field('stripe-sync', 'Version'), $tool_version,
   'package version is the tool\'s (debian/changelog = src/main.c)');

is(`dpkg-deb --ctrl-tarfile $deb{'stripe-sync'} | tar -xO ./conffiles`,
   "$CONF\n", "$CONF is the only conffile");

# ----------------------------------------------------------- install ---

$installing = 1;
my ($st, $out) = run(@APT, 'install', $deb{'libnginx-mod-http-stripe-sync'},
                     $deb{'stripe-sync'});
is($st, 0, 'apt-get install ./build/deb/*.deb') or diag $out;
ok(installed($_), "$_ installed") for @PKGS;

sub mode_owner {
    my ($path) = @_;
    my @s = lstat $path or return 'absent';
    return sprintf '%04o %s:%s', $s[2] & 07777,
        scalar(getpwuid $s[4]) // $s[4], scalar(getgrgid $s[5]) // $s[5];
}

($st, $out) = run('dpkg', '--verify', @PKGS);
is($out, '', 'dpkg --verify: every file as packaged');
is(mode_owner($MOD_SO), '0644 root:root', "$MOD_SO");
is(slurp($MOD_CONF), "load_module modules/ngx_http_stripe_sync_module.so;\n",
   "$MOD_CONF loads the module as Debian's module packages do");
is(slurp($MOD_CONF), slurp("$root/etc/mod-http-stripe-sync.conf"),
   '... the same line as make install\'s etc/mod-http-stripe-sync.conf');
ok(-l $MOD_LINK, "$MOD_LINK is a symlink");
is(readlink($MOD_LINK), $MOD_CONF, '... to modules-available');

is(mode_owner($BIN), '0755 root:root', $BIN);
($st, $out) = run($BIN, '--version');
is($out, "stripe-sync $tool_version\n", 'stripe-sync --version');

my @pw = getpwnam($USER);
ok(@pw, "system user $USER exists");
cmp_ok($pw[2], '<', 1000, '... with a system uid') if @pw;
like($pw[8] // '', qr{/(?:usr/)?s?bin/(?:nologin|false)$}, '... and no login shell') if @pw;
is($pw[7], '/nonexistent', '... and no home') if @pw;
ok(defined getgrnam($USER), "group $USER exists");

is(mode_owner($ETC), '0750 root:stripe-sync', "$ETC");
is(mode_owner($CONF), '0640 root:stripe-sync', "$CONF");
is(slurp($CONF), slurp("$root/etc/stripe-sync.conf.example"),
   "$CONF is the example configuration");

my $unit = slurp($UNIT) // '';
like($unit, qr{^ExecStart=/usr/bin/stripe-sync consume -c /etc/stripe-sync/stripe-sync\.conf$}m,
     'unit runs the packaged binary');
like($unit, qr/^User=stripe-sync$/m, 'unit runs as the stripe-sync user');
like($unit, qr/^$_$/m, "unit hardened: $_")
    for qw(NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes);
unlike($unit, qr/@[A-Z]+@/, 'no placeholder left in the unit');
ok(!-e '/etc/systemd/system/multi-user.target.wants/stripe-sync.service',
   'the unit is not enabled by the package (the admin edits the config first)');

ok(-e "$DOC/$_", "$DOC/$_") for qw(copyright examples/stripe-sync.conf.example
    examples/nginx-stripe-sync.conf.example README.md.gz operations.md.gz);

my $man_excluded = grep { /^\s*path-exclude\s*=?\s*\/usr\/share\/man/ }
                   map { split /\n/, slurp($_) // '' } glob '/etc/dpkg/dpkg.cfg.d/*';
SKIP: {
    skip 'dpkg excludes /usr/share/man on this machine', 2 * @MANS if $man_excluded;
    for my $m (@MANS) {
        ok(-f $m, "$m installed");
        my ($name, $sec) = $m =~ m{/([^/]+)\.(\d)\.gz$};
        chomp(my $w = -x '/usr/bin/man' ? `man -w $sec $name 2>/dev/null` : $m);
        is($w, $m, "man -w $sec $name finds it");
    }
}

# ------------------------------------------- nginx with the packaged module ---

my $redis = start_redis();
my $tmp = temp_dir('deb');
my $secret = write_secret($tmp, 'stripe.whsec', "whsec_debtest\n");
my $prefix = temp_dir('deb-nginx');
symlink('/usr/lib/nginx/modules', "$prefix/modules") or die $!;    # as /usr/share/nginx has it
my $port = free_port();
spew("$prefix/nginx.conf", <<"EOC");
include /etc/nginx/modules-enabled/*.conf;
worker_processes 1;
daemon off;
pid $prefix/nginx.pid;
error_log $prefix/error.log info;
events { worker_connections 64; }
http {
    access_log $prefix/access.log;
    client_body_temp_path $prefix/client_body_temp;
    proxy_temp_path $prefix/proxy_temp;
    fastcgi_temp_path $prefix/fastcgi_temp;
    uwsgi_temp_path $prefix/uwsgi_temp;
    scgi_temp_path $prefix/scgi_temp;
    stripe_sync_redis 127.0.0.1:$redis->{port};
    server {
        listen 127.0.0.1:$port;
        location = /stripe/webhook {
            stripe_sync;
            stripe_sync_secret_file $secret;
        }
    }
}
EOC
my @nginx = ('/usr/sbin/nginx', '-p', "$prefix/", '-c', "$prefix/nginx.conf",
             '-e', "$prefix/error.log");
($st, $out) = run(@nginx, '-t');
is($st, 0, 'nginx -t: the packaged module loads through modules-enabled')
    or diag $out;

my $ng = spawn_process(name => 'nginx', cmd => \@nginx, dir => $prefix);
ok(wait_until(sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") }, tmo(10)),
   'nginx with the packaged module listens') or diag slurp("$prefix/error.log");

($st, $out) = run($BIN, 'send', '--url', "http://127.0.0.1:$port/stripe/webhook",
                  '--secret-file', $secret, '--type', 'invoice.paid');
is($st, 0, 'the packaged stripe-sync send posts a signed event') or diag $out;
like($out, qr/HTTP 200 \{"received":true\}/, '... the packaged module queues it');
is($redis->queue_len, 1, '... one record in Redis');
$ng->stop;

# ------------------------------------- the tool as its user, systemctl-free ---

SKIP: {
    chomp(my $runuser = `command -v runuser 2>/dev/null`);
    skip 'runuser is missing', 6 unless $runuser;

    # the real file: readable by the user (Redis on 6379 may not run here)
    ($st, $out) = run($runuser, '-u', $USER, '--', $BIN, 'check', '-c', $CONF);
    like($out, qr{^ok   config \Q$CONF\E: provider log}m,
         "stripe-sync check as $USER reads $CONF") or diag $out;

    ($st, $out) = run($runuser, '-u', 'nobody', '--', $BIN, 'check', '-c', $CONF);
    is($st, 1, "... another user cannot");
    like($out, qr/Permission denied/, '... (permission denied)');

    # the packaged example against our Redis: the whole check passes
    (my $conf = slurp($CONF)) =~ s/^redis = "127\.0\.0\.1:6379";/redis = "127.0.0.1:$redis->{port}";/m
        or die "no redis line in $CONF";
    spew("$tmp/stripe-sync.conf", $conf, 0644);
    ($st, $out) = run($runuser, '-u', $USER, '--', $BIN, 'check', '-c', "$tmp/stripe-sync.conf");
    is($st, 0, "stripe-sync check of the example configuration passes as $USER") or diag $out;
    like($out, qr/^ok   redis 127\.0\.0\.1:$redis->{port}$/m, '... Redis reached');

    ($st, $out) = run($runuser, '-u', $USER, '--', $BIN, 'stats', '--json',
                      '-c', "$tmp/stripe-sync.conf");
    like($out, qr/"queue":1\b/, 'stripe-sync stats sees the event the module queued')
        or diag $out;
}

# ------------------------------------------------------ remove, purge ---

($st, $out) = run(@APT, 'remove', @PKGS);
is($st, 0, 'apt-get remove') or diag $out;
ok(!-e $MOD_SO, 'remove: module gone');
ok(!-l $MOD_LINK, 'remove: module disabled');
ok(-l "$MOD_LINK.removed", '... its link set aside as Debian does (a reinstall restores it)');
ok(!-e $BIN, 'remove: tool gone');
ok(-e $CONF, 'remove: configuration kept');

($st, $out) = run(@APT, 'purge', @PKGS);
is($st, 0, 'apt-get purge') or diag $out;
ok(!present($_), "$_ purged (" . pkg_status($_) . ")") for @PKGS;
my @left = grep { -e $_ || -l $_ } @OWNED;
is("@left", '', 'purge leaves nothing behind (module, link, tool, /etc/stripe-sync, unit, docs, man pages)');
ok(!grep({ /stripe.sync/ } glob('/etc/nginx/modules-enabled/*')),
   'nothing of ours in modules-enabled');

# the user stays, as Debian packages leave theirs (docs/packaging.md); END
# deletes it when this test created it
ok(defined getpwnam($USER), "purge keeps the $USER user");

finish();
