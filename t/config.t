# nginx -t: every configuration mistake is an [emerg] naming what was wrong;
# good configurations pass. Nothing here starts nginx or Redis.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use StripeSync::Test;

require_module();

my $dir = temp_dir('conf');
my $secrets = spew("$dir/stripe.whsec", "whsec_one\nwhsec_two\n", 0600);
my $empty   = spew("$dir/empty.whsec", "", 0600);
my $pass    = spew("$dir/redis.pass", "sekret\n", 0600);
my $missing = "$dir/no-such-file.whsec";

sub good {
    my ($name, %o) = @_;
    my ($rc, $out) = nginx_t(%o);
    is($rc, 0, "$name: nginx -t passes") or diag($out);
    like($out, qr/test is successful/, "$name: test is successful");
    unlike($out, qr/\[(emerg|alert|crit)\]/, "$name: no [emerg]");
}

# $want: regexps that must all appear in ONE [emerg] line.
sub bad {
    my ($name, $want, %o) = @_;
    my ($rc, $out) = nginx_t(%o);
    isnt($rc, 0, "$name: nginx -t fails");
    my @emerg = grep { /\[emerg\]/ } split /\n/, $out;
    ok(@emerg, "$name: an [emerg] line") or diag($out);
    my @match = grep { my $l = $_; !grep { $l !~ $_ } @$want } @emerg;
    ok(@match, "$name: [emerg] names " . join(' and ', @$want))
        or diag("got:\n" . join("\n", @emerg));
}

my $redis = 'stripe_sync_redis 127.0.0.1:6379;';

# ---------------------------------------------------------------- good ---

good('full SPEC example',
    http => "stripe_sync_redis 127.0.0.1:6379;
             stripe_sync_redis_password_file $pass;
             stripe_sync_redis_db 0;
             stripe_sync_redis_timeout 2s;
             stripe_sync_prefix stripe_sync;",
    conf => "location = /stripe/webhook {
                 stripe_sync;
                 stripe_sync_secret_file $secrets;
                 stripe_sync_secret whsec_three;
                 stripe_sync_secret whsec_four;
                 stripe_sync_tolerance 300s;
                 stripe_sync_livemode any;
                 stripe_sync_dedup_ttl 30d;
                 client_max_body_size 1m;
             }
             location = /stripe/status {
                 stripe_sync_status; allow 127.0.0.1; deny all;
             }");

good('redis at server level, unix socket, live mode',
    conf => "stripe_sync_redis unix:$dir/redis.sock;
             location = /hook {
                 stripe_sync; stripe_sync_secret whsec_x;
                 stripe_sync_livemode live;
             }");

good('redis at location level, test mode, other prefix',
    conf => "location = /hook {
                 stripe_sync_redis 127.0.0.1:6379;
                 stripe_sync_redis_db 3;
                 stripe_sync_prefix acme;
                 stripe_sync; stripe_sync_secret whsec_x;
                 stripe_sync_livemode test;
                 stripe_sync_tolerance 5m;
                 stripe_sync_redis_timeout 500ms;
             }");

good('status page alone needs no redis and no secret',
    conf => 'location = /status { stripe_sync_status; }');

# ----------------------------------------------------------------- bad ---

# The SPEC asks for the bad value to be named (nginx's stock slots only name
# the directive); the directive must be named too, or the file:line of it.
bad('bad tolerance', [qr/stripe_sync_tolerance/, qr/abc/],
    http => $redis,
    conf => 'location = /h { stripe_sync; stripe_sync_secret whsec_x;
                             stripe_sync_tolerance abc; }');

bad('bad redis timeout', [qr/stripe_sync_redis_timeout/, qr/2x/],
    http => "$redis stripe_sync_redis_timeout 2x;",
    conf => 'location = /h { stripe_sync; stripe_sync_secret whsec_x; }');

bad('bad dedup ttl', [qr/stripe_sync_dedup_ttl/, qr/forever/],
    http => $redis,
    conf => 'location = /h { stripe_sync; stripe_sync_secret whsec_x;
                             stripe_sync_dedup_ttl forever; }');

bad('stripe_sync without a secret', [qr/secret/],
    http => $redis,
    conf => 'location = /h { stripe_sync; }');

bad('secret file that does not exist', [qr/\Q$missing\E/],
    http => $redis,
    conf => "location = /h { stripe_sync; stripe_sync_secret_file $missing; }");

bad('secret file that is a directory', [qr/\Q$dir\E/],
    http => $redis,
    conf => "location = /h { stripe_sync; stripe_sync_secret_file $dir; }");

bad('secret file with no secret in it', [qr/\Q$empty\E|secret/],
    http => $redis,
    conf => "location = /h { stripe_sync; stripe_sync_secret_file $empty; }");

bad('stripe_sync without stripe_sync_redis', [qr/stripe_sync_redis/],
    conf => 'location = /h { stripe_sync; stripe_sync_secret whsec_x; }');

bad('bad livemode', [qr/"maybe"/, qr/stripe_sync_livemode|nginx\.conf:\d+/],
    http => $redis,
    conf => 'location = /h { stripe_sync; stripe_sync_secret whsec_x;
                             stripe_sync_livemode maybe; }');

bad('bad redis port', [qr/127\.0\.0\.1:notaport/],
    http => 'stripe_sync_redis 127.0.0.1:notaport;',
    conf => 'location = /h { stripe_sync; stripe_sync_secret whsec_x; }');

bad('bad redis db', [qr/stripe_sync_redis_db/],
    http => "$redis stripe_sync_redis_db abc;",
    conf => 'location = /h { stripe_sync; stripe_sync_secret whsec_x; }');

bad('password file that does not exist', [qr/\Q$dir\E\/no-such\.pass/],
    http => "$redis stripe_sync_redis_password_file $dir/no-such.pass;",
    conf => 'location = /h { stripe_sync; stripe_sync_secret whsec_x; }');

finish();
