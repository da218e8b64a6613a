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

# ------------------------------------------- Sentinel, WAIT for replicas ---

my $hook = 'location = /h { stripe_sync; stripe_sync_secret whsec_x; }';

good('stripe_sync_redis_sentinel with a password file, WAIT',
    http => "stripe_sync_redis_sentinel 127.0.0.1:26379 127.0.0.1:26380
                 [::1]:26381 name=mymaster sentinel_password_file=$pass;
             stripe_sync_redis_password_file $pass;
             stripe_sync_redis_wait_replicas 1 200ms;",
    conf => $hook);

good('sentinel at http level, plain Redis in one location',
    http => 'stripe_sync_redis_sentinel 127.0.0.1:26379 name=m;',
    conf => "$hook
             location = /other {
                 stripe_sync_redis 127.0.0.1:6379;
                 stripe_sync_redis_wait_replicas 0;
                 stripe_sync; stripe_sync_secret whsec_x;
             }");

bad('sentinel without name=', [qr/stripe_sync_redis_sentinel/, qr/name=/],
    http => 'stripe_sync_redis_sentinel 127.0.0.1:26379 127.0.0.1:26380;',
    conf => $hook);

bad('sentinel with no address', [qr/names no sentinel/],
    http => "stripe_sync_redis_sentinel name=m sentinel_password_file=$pass;",
    conf => $hook);

bad('sentinel with an unknown parameter', [qr/"password=x"/,
                                           qr/stripe_sync_redis_sentinel/],
    http => 'stripe_sync_redis_sentinel 127.0.0.1:26379 name=m password=x;',
    conf => $hook);

bad('sentinel with a bad port', [qr/"127\.0\.0\.1:notaport"/],
    http => 'stripe_sync_redis_sentinel 127.0.0.1:notaport name=m;',
    conf => $hook);

bad('sentinel over a unix socket', [qr/"unix:\/run\/s\.sock"/, qr/TCP/],
    http => 'stripe_sync_redis_sentinel unix:/run/s.sock name=m;',
    conf => $hook);

bad('sentinel name with a control character', [qr/name=/],
    http => "stripe_sync_redis_sentinel 127.0.0.1:26379 \"name=a\tb\";",
    conf => $hook);

bad('sentinel password file that does not exist', [qr/\Q$missing\E/],
    http => "stripe_sync_redis_sentinel 127.0.0.1:26379 name=m
                 sentinel_password_file=$missing;",
    conf => $hook);

bad('sentinel and redis at one level', [qr/stripe_sync_redis_sentinel/,
                                        qr/127\.0\.0\.1:6379/],
    http => "$redis stripe_sync_redis_sentinel 127.0.0.1:26379 name=m;",
    conf => $hook);

bad('redis after sentinel at one level', [qr/both/, qr/127\.0\.0\.1:6380/],
    http => 'stripe_sync_redis_sentinel 127.0.0.1:26379 name=m;
             stripe_sync_redis 127.0.0.1:6380;',
    conf => $hook);

bad('wait replicas not a number', [qr/"many"/,
                                   qr/stripe_sync_redis_wait_replicas/],
    http => "$redis stripe_sync_redis_wait_replicas many;",
    conf => $hook);

bad('wait replicas timeout 0', [qr/"0"/, qr/stripe_sync_redis_wait_replicas/],
    http => "$redis stripe_sync_redis_wait_replicas 1 0;",
    conf => $hook);

bad('wait longer than the redis timeout', [qr/2000ms/, qr/1000ms/,
                                           qr/stripe_sync_redis_timeout/],
    http => "$redis stripe_sync_redis_timeout 1s;
             stripe_sync_redis_wait_replicas 1 2s;",
    conf => $hook);

finish();
