# Secrets never leak (issue 6): a realistic flow with every credential in a
# file (webhook signing secret, Redis password for the module and the
# consumer, Kit API key and OAuth token, Stripe API key, a webhook
# provider's signing secret), failures included (a 401 from Kit and from
# Stripe that echo the credential, a wrongly signed request, checks with a
# wrong key and a wrong Redis password), then every log we write and every
# value in Redis is searched for each secret: none may appear. Also: secret
# files readable by others draw a warning from nginx -t and the consumer.
# (The fakes' own logs are left out: they receive the credentials.)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use Test::More;
use Time::HiRes qw(time sleep);
use StripeSync::Test;
use StripeSync::Fake;

require_module();
require_tool();

# distinctive, so a hit can only be a leak; each ends in its own random
# part, searched for too (an excerpt may cut a secret's start off)
my $n = 0;
sub rnd { substr(sha256_hex(time . $$ . ++$n . rand), 0, 16) }
my %SECRET = (
    webhook_secret   => 'whsec_hook_' . rnd(),
    redis_password   => 'redis-pw-' . rnd(),
    kit_api_key      => 'kit_key_' . rnd(),
    kit_oauth        => 'kit_oauth_' . rnd(),
    stripe_key       => 'sk_test_' . rnd(),
    provider_secret  => 'whsec_provider_' . rnd(),
    wrong_kit_key    => 'kit_wrong_' . rnd(),
    wrong_redis_pw   => 'redis-wrong-' . rnd(),
);
my %RANDOM = map { $_ => substr($SECRET{$_}, -16) } keys %SECRET;
my $ANY = join '|', values %RANDOM;

my $dir = temp_dir('secrets');
my %FILE = map { $_ => write_secret($dir, $_, "$SECRET{$_}\n") } keys %SECRET;

my $redis = start_redis(password => $SECRET{redis_password});
my $ng = start_nginx(
    log_level => 'debug',
    http => "stripe_sync_redis 127.0.0.1:$redis->{port};
             stripe_sync_redis_password_file $FILE{redis_password};
             log_format full '\$remote_addr \$status \$request \$stripe_sync_result '
                             '\$stripe_sync_event_id \"\$http_stripe_signature\" '
                             '\$request_length \$request_time';",
    conf => "
        access_log %%PREFIX%%/access.log full;
        location = /hook {
            stripe_sync;
            stripe_sync_secret_file $FILE{webhook_secret};
        }
        location = /status { stripe_sync_status; }",
);

my $kit = StripeSync::Fake->new(api => 'kit', key => $SECRET{kit_api_key},
                                oauth => $SECRET{kit_oauth}, seed => { tags => ['Buyer'] });
my $stripe = StripeSync::Fake->new(api => 'stripe', key => $SECRET{stripe_key}, seed => {
    customers => [ { id => 'cus_NOMAIL', object => 'customer',
                     email => 'nomail@example.org', name => 'No Mail' } ] });
my $hook = StripeSync::Fake->new(api => 'webhook', secret => $SECRET{provider_secret});

my $P = '{stripe_sync}';
my @OUTPUTS;    # [ name, text ] of everything we must search

sub config_text {
    my (%o) = @_;
    my %c = (
        redis => '127.0.0.1:' . $redis->port,
        redis_password_file => $o{redis_password_file} // $FILE{redis_password},
        prefix => 'stripe_sync', heartbeat => 1, concurrency => 4,
        shutdown_grace => 5,
        retry => { max_attempts => 2, base_delay => 1, max_delay => 1 },
        stripe => { api_base => $stripe->url, timeout => 5,
                    api_key_file => $FILE{stripe_key} },
        provider => $o{provider} // {
            type => 'kit', api_base => $kit->base, timeout => 5,
            api_key_file => $o{kit_key_file} // $FILE{kit_api_key},
            ($o{no_oauth} ? () : (oauth_token_file => $FILE{kit_oauth})) },
        rules => [ { on => 'purchase', tag => ['Buyer'], purchase => JSON::PP::true },
                   { on => 'subscription_started', tag => ['Member'] } ],
    );
    return libconfig(\%c);
}

sub send_event {
    my ($type, $object, %o) = @_;
    my $id = unique_id('evt');
    my $body = make_event(type => $type, id => $id, object => $object, livemode => 1);
    my $r = post_event($ng->url('/hook'), $body,
                       secret => $o{secret} // $SECRET{webhook_secret});
    return ($r, $id);
}

sub invoice {
    my ($n) = @_;
    return { id => "in_$n", object => 'invoice', customer => "cus_$n",
             customer_email => lc("$n\@example.org"), customer_name => "$n Buyer",
             billing_reason => 'subscription_create', attempt_count => 1,
             amount_paid => 2900, amount_due => 2900, currency => 'usd', status => 'paid',
             parent => { type => 'subscription_details',
                         subscription_details => { subscription => "sub_$n" } },
             lines => { object => 'list', data => [] }, metadata => {} };
}

sub idle {
    my ($t) = @_;
    return wait_until(sub {
        return 0 if $redis->cmd('LLEN', "$P:queue") || $redis->cmd('ZCARD', "$P:retry");
        for my $k (@{ $redis->cmd('KEYS', "$P:processing:*") || [] }) {
            return 0 if $redis->cmd('LLEN', $k);
        }
        return 1;
    }, tmo($t // 20), 0.1);
}

# ------------------------------------------------------------ the flow ---

subtest 'a realistic flow, failures included' => sub {
    my $conf = spew("$dir/kit.conf", config_text(), 0600);
    my $c = start_consumer(conf_file => $conf, name => 'consumer-kit', dir => $dir);

    my ($r, $ok_id) = send_event('invoice.paid', invoice('OK1'));
    is($r->{status}, 200, 'a genuine event: 200') or diag_response($r, $ng);

    ($r) = send_event('invoice.paid', invoice('FORGED'), secret => 'whsec_not_the_one');
    is($r->{status}, 400, 'a wrongly signed event: 400');

    # Kit refuses the key and echoes both credentials back (as a careless
    # proxy or API might): the dead letter keeps the response, redacted
    $kit->fault(method => 'POST', route => '/subscribers', status => 401,
        body => { errors => [ "API key $SECRET{kit_api_key} is not valid; "
                              . "token $SECRET{kit_oauth} expired" ] },
        body_like => qr/refused401/);
    my (undef, $dead_id) = send_event('invoice.paid', invoice('REFUSED401'));

    # Stripe refuses the key for a customer lookup and echoes it too
    $stripe->fault(method => 'GET', route => '/v1/customers/cus_NOMAIL', status => 401,
        body => { error => { type => 'invalid_request_error',
                             message => "Invalid API Key provided: $SECRET{stripe_key}" } });
    send_event('customer.subscription.created', {
        id => 'sub_NOMAIL', object => 'subscription', customer => 'cus_NOMAIL',
        status => 'active', created => int(time), start_date => int(time),
        items => { object => 'list', data => [] }, metadata => {} });

    ok(idle(30), 'the queue drained') or diag $c->output;
    ok(scalar($kit->requests(route => '/purchases')), 'the purchase reached Kit');
    my @dead = @{ $redis->cmd('LRANGE', "$P:dead", 0, -1) || [] };
    ok((grep { /\Q$dead_id\E/ } @dead), 'the 401 ended as a dead letter')
        or diag explain \@dead;
    ok((grep { /\[redacted\]/ } @dead), 'its response is kept, redacted');
    ok((grep { /NOMAIL/ } @dead), 'the Stripe 401 ended as a dead letter (no email)');
    is($c->stop(sig => 'TERM', timeout => tmo(10)), 0, 'consumer stopped');
    push @OUTPUTS, [ 'consumer (kit) log', $c->output ];

    # the webhook provider: the receiver answers 400 echoing its secret
    $hook->fault(method => 'POST', status => 400,
                 body => { error => "bad signature for $SECRET{provider_secret}" });
    my $wconf = spew("$dir/webhook.conf", config_text(provider => {
        type => 'webhook', url => $hook->url('/deliver'), timeout => 5,
        secret_file => $FILE{provider_secret} }), 0600);
    my $w = start_consumer(conf_file => $wconf, name => 'consumer-webhook', dir => $dir);
    send_event('invoice.paid', invoice('HOOK1'));
    send_event('invoice.paid', invoice('HOOK2'));
    ok(idle(30), 'the webhook jobs ended') or diag $w->output;
    ok(scalar(grep { ($_->{sig_valid} // 0) } $hook->requests), 'a delivery was signed');
    is($w->stop(sig => 'TERM', timeout => tmo(10)), 0, 'webhook consumer stopped');
    push @OUTPUTS, [ 'consumer (webhook) log', $w->output ];
};

subtest 'checks: right keys, a wrong Kit key, a wrong Redis password' => sub {
    my ($rc, $out) = run_tool('check', '-c', "$dir/kit.conf");
    is($rc, 0, 'check with the right keys: exit 0') or diag $out;
    like($out, qr/^ok   redis /m, 'redis ok (AUTH with the password file)');
    like($out, qr/^ok   stripe: API key accepted$/m, 'stripe ok');
    push @OUTPUTS, [ 'check (right keys)', $out ];

    # both refuse the key and quote it back
    $kit->fault(method => 'GET', route => '/account', status => 401,
        body => { errors => [ "API key $SECRET{wrong_kit_key} is not valid" ] });
    $stripe->fault(method => 'GET', route => '/v1/customers', status => 401,
        body => { error => { type => 'invalid_request_error',
                             message => "Invalid API Key provided: $SECRET{stripe_key}" } });
    my $bad = spew("$dir/wrongkey.conf",
                   config_text(kit_key_file => $FILE{wrong_kit_key}, no_oauth => 1), 0600);
    ($rc, $out) = run_tool('check', '-c', $bad);
    is($rc, 1, 'check with a wrong Kit key: exit 1');
    like($out, qr/^FAIL upsert: .*401/m, 'the refusal is reported') or diag $out;
    like($out, qr/^FAIL stripe: .*401/m, 'and Stripe\'s');
    push @OUTPUTS, [ 'check (wrong Kit key)', $out ];

    $bad = spew("$dir/wrongpw.conf",
                config_text(redis_password_file => $FILE{wrong_redis_pw}), 0600);
    ($rc, $out) = run_tool('check', '-c', $bad);
    is($rc, 1, 'check with a wrong Redis password: exit 1');
    like($out, qr/^FAIL redis /m, 'the refusal is reported') or diag $out;
    push @OUTPUTS, [ 'check (wrong Redis password)', $out ];
};

subtest 'nginx with a wrong Redis password: 503, nothing leaks' => sub {
    my $ng2 = start_nginx(log_level => 'debug',
        http => "stripe_sync_redis 127.0.0.1:$redis->{port};
                 stripe_sync_redis_password_file $FILE{wrong_redis_pw};",
        conf => "location = /hook { stripe_sync;
                     stripe_sync_secret_file $FILE{webhook_secret}; }");
    my $body = make_event(type => 'invoice.paid', object => invoice('NGPW'));
    my $r = post_event($ng2->url('/hook'), $body, secret => $SECRET{webhook_secret});
    is($r->{status}, 503, 'refused by Redis: 503');
    $ng2->stop;
    push @OUTPUTS, map { [ "nginx (wrong password) $_", slurp($ng2->prefix . "/$_") // '' ] }
                   qw(error.log access.log stderr.log);
};

# ------------------------------------------------------- the search ---

subtest 'no secret in any log, answer or Redis value' => sub {
    my $st = http_get($ng->url('/status'));
    is($st->{status}, 200, 'status page');
    push @OUTPUTS, [ 'status page', $st->{content} ];
    $ng->stop;
    push @OUTPUTS, map { [ "nginx $_", slurp($ng->prefix . "/$_") // '' ] }
                   qw(error.log access.log stderr.log);
    like($OUTPUTS[-3][1], qr/\[debug\]/, 'the nginx error log was at debug level');

    # every key of every kind, every database in use
    my @values;
    for my $db (0) {
        my $cursor = 0;
        do {
            my $res = $redis->cmd_db($db, 'SCAN', $cursor, 'COUNT', 1000);
            $cursor = $res->[0];
            for my $k (@{ $res->[1] }) {
                my $t = $redis->cmd_db($db, 'TYPE', $k);
                my @v = $t eq 'string' ? ($redis->cmd_db($db, 'GET', $k))
                      : $t eq 'list'   ? @{ $redis->cmd_db($db, 'LRANGE', $k, 0, -1) }
                      : $t eq 'hash'   ? @{ $redis->cmd_db($db, 'HGETALL', $k) }
                      : $t eq 'set'    ? @{ $redis->cmd_db($db, 'SMEMBERS', $k) }
                      : $t eq 'zset'   ? @{ $redis->cmd_db($db, 'ZRANGE', $k, 0, -1, 'WITHSCORES') }
                      : ("unexpected type $t");
                push @values, [ "redis $t $k", join "\n", $k, map { $_ // '' } @v ];
            }
        } while ($cursor ne '0');
    }
    ok(@values >= 8, scalar(@values) . ' Redis keys dumped');
    ok((grep { $_->[0] =~ /:dead$/ } @values), 'dead letters among them');
    ok((grep { $_->[0] =~ /:customers$/ } @values), 'the customer map among them');

    my $hits = 0;
    for my $o (@OUTPUTS, @values) {
        my ($where, $text) = @$o;
        for my $name (sort keys %SECRET) {
            # the whole secret or its random part; and the first 8 bytes
            # of that part, in case an excerpt cut it
            for my $needle ($SECRET{$name}, $RANDOM{$name}, substr($RANDOM{$name}, 0, 8)) {
                my $at = index($text, $needle);
                next if $at < 0;
                $hits++;
                diag("$name found in $where: ..."
                     . substr($text, $at > 80 ? $at - 80 : 0, 200) . '...');
                last;
            }
        }
    }
    is($hits, 0, 'no secret in ' . scalar(@OUTPUTS) . ' outputs and '
                 . scalar(@values) . ' Redis keys');
};

# ------------------------------------------------ readable secret files ---

subtest 'secret files readable by others: warnings' => sub {
    my $open = temp_dir('secrets-0644');
    my $whsec = spew("$open/hook.whsec", "$SECRET{webhook_secret}\n", 0644);
    my $pw = spew("$open/redis.pass", "$SECRET{redis_password}\n", 0644);
    my ($rc, $out) = nginx_t(
        http => "stripe_sync_redis 127.0.0.1:$redis->{port};
                 stripe_sync_redis_password_file $pw;",
        conf => "location = /hook { stripe_sync; stripe_sync_secret_file $whsec; }");
    is($rc, 0, 'nginx -t passes');
    like($out, qr/\[warn\] .*secret file "\Q$whsec\E" is readable by others/,
         'nginx -t warns about the webhook secret file');
    like($out, qr/\[warn\] .*secret file "\Q$pw\E" is readable by others/,
         'and about the Redis password file');
    unlike($out, qr/$ANY/, 'without their content');

    my $key = spew("$open/kit.key", "$SECRET{kit_api_key}\n", 0644);
    my $conf = spew("$open/open.conf", libconfig({
        redis => '127.0.0.1:' . $redis->port, redis_password_file => $pw,
        provider => { type => 'kit', api_base => $kit->base, api_key_file => $key },
        rules => [ { on => 'purchase', tag => ['Buyer'] } ] }), 0600);
    ($rc, $out) = run_tool('check', '-c', $conf);
    like($out, qr/^warning: \Q$conf\E:\d+: provider\.api_key_file "\Q$key\E" is readable by every user \(mode 0644\); chmod o-r it$/m,
         'check warns about the Kit key file') or diag $out;
    like($out, qr/^warning: \Q$conf\E:\d+: redis_password_file "\Q$pw\E" is readable by every user \(mode 0644\); chmod o-r it$/m,
         'and about the Redis password file');
    unlike($out, qr/$ANY/, 'without their content');

    my $c = start_consumer(conf_file => $conf, name => 'consumer-open', dir => $open);
    ok(wait_until(sub { $c->output =~ /is readable by every user/ }, tmo(10)),
       'consume warns likewise') or diag $c->output;
    like($c->output, qr/provider\.api_key_file "\Q$key\E" is readable by every user \(mode 0644\)/,
         'naming the file');
    $c->stop(sig => 'TERM', timeout => tmo(10));
    unlike($c->output, qr/$ANY/, 'without its content');
};

finish();
