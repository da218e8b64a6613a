# make install into a DESTDIR: the tree a package or an admin gets, with
# safe modes, and a module that Debian's nginx loads through the snippet.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use StripeSync::Test;

require_module();

my $root = repo_root();
-x "$root/build/stripe-sync"
    or plan skip_all => 'build/stripe-sync not built (make tool)';

my $dest = temp_dir('install');
my $out = `make -s -C $root install DESTDIR=$dest 2>&1`;
is($?, 0, 'make install DESTDIR=... succeeds') or diag $out;

sub mode { my @s = stat $_[0]; return @s ? sprintf('%04o', $s[2] & 07777) : 'absent' }

my %want = (
    '/usr/lib/nginx/modules/ngx_http_stripe_sync_module.so'       => '0644',
    '/usr/share/nginx/modules-available/mod-http-stripe-sync.conf' => '0644',
    '/usr/local/bin/stripe-sync'                                  => '0755',
    '/etc/systemd/system/stripe-sync.service'                     => '0644',
    '/etc/stripe-sync'                                            => '0750',
    '/etc/stripe-sync/stripe-sync.conf'                           => '0640',
    '/usr/local/share/doc/stripe-sync/README.md'                  => '0644',
    '/usr/local/share/doc/stripe-sync/examples/stripe-sync.conf.example' => '0644',
    '/usr/local/share/doc/stripe-sync/examples/nginx-stripe-sync.conf.example' => '0644',
);

for my $path (sort keys %want) {
    is(mode("$dest$path"), $want{$path}, "$path mode $want{$path}");
}

is(slurp("$dest/usr/share/nginx/modules-available/mod-http-stripe-sync.conf"),
   "load_module modules/ngx_http_stripe_sync_module.so;\n",
   'snippet loads the module the way Debian modules do');

my $link = "$dest/etc/nginx/modules-enabled/50-mod-http-stripe-sync.conf";
ok(-l $link, 'module enabled by a symlink in modules-enabled');
is(readlink($link), '/usr/share/nginx/modules-available/mod-http-stripe-sync.conf',
   'symlink points at the installed snippet (absolute, as Debian does)');

my $unit = slurp("$dest/etc/systemd/system/stripe-sync.service") // '';
like($unit, qr{^ExecStart=/usr/local/bin/stripe-sync consume -c /etc/stripe-sync/stripe-sync\.conf$}m,
     'unit runs the installed binary');
unlike($unit, qr/@[A-Z]+@/, 'no placeholder left in the unit');
like($unit, qr/^User=stripe-sync$/m, 'unit runs as its own user');
like($unit, qr/^NoNewPrivileges=yes$/m, 'unit hardened: NoNewPrivileges');
like($unit, qr/^ProtectSystem=strict$/m, 'unit hardened: ProtectSystem');
like($unit, qr/^PrivateTmp=yes$/m, 'unit hardened: PrivateTmp');

cmp_ok(-s "$dest/usr/local/bin/stripe-sync", '>', 0, 'tool installed');
my $ver = `$dest/usr/local/bin/stripe-sync --version 2>&1`;
is($? >> 8, 0, 'installed tool runs') or diag $ver;

is(`cmp $root/build/ngx_http_stripe_sync_module.so $dest/usr/lib/nginx/modules/ngx_http_stripe_sync_module.so 2>&1`,
   '', 'installed module is the built one');

# Debian's nginx loads the installed module through the enabled snippet;
# "modules/" resolves against the prefix, which points into the DESTDIR as
# /usr/share/nginx/modules does on the system.
my $prefix = temp_dir('install-prefix');
symlink("$dest/usr/lib/nginx/modules", "$prefix/modules") or die $!;
my $snippet = $dest . readlink($link);    # the link, followed in DESTDIR
spew("$prefix/nginx.conf",
     "include $snippet;\n"
   . "events {}\n"
   . "http { stripe_sync_redis 127.0.0.1:6379;\n"
   . "  server { listen 127.0.0.1:" . free_port() . ";\n"
   . "    location = /h { stripe_sync; stripe_sync_secret whsec_x; } } }\n");
my $t = `/usr/sbin/nginx -t -p $prefix/ -c $prefix/nginx.conf -e $prefix/error.log 2>&1`;
is($? >> 8, 0, 'nginx -t loads the installed module via modules-enabled')
    or diag $t;

# a second install keeps the user's configuration
open my $fh, '>>', "$dest/etc/stripe-sync/stripe-sync.conf" or die $!;
print $fh "# edited by the user\n";
close $fh;
$out = `make -s -C $root install DESTDIR=$dest 2>&1`;
like(slurp("$dest/etc/stripe-sync/stripe-sync.conf"), qr/edited by the user/,
     'reinstall keeps an edited configuration');

$out = `make -s -C $root uninstall DESTDIR=$dest 2>&1`;
is($?, 0, 'make uninstall succeeds') or diag $out;
for my $path ('/usr/lib/nginx/modules/ngx_http_stripe_sync_module.so',
              '/usr/local/bin/stripe-sync',
              '/etc/systemd/system/stripe-sync.service') {
    ok(!-e "$dest$path", "uninstall removed $path");
}
ok(!-e $link && !-l $link, 'uninstall removed the modules-enabled link');
ok(-e "$dest/etc/stripe-sync/stripe-sync.conf", 'uninstall kept the configuration');

finish();
