package StripeSync::Chaos;

# Chaos runs of the whole pipeline (t/chaos.t, bench/chaos): a Stripe-like
# sender, the stack (one persistent Redis, two nginx with the module, two
# consumers, fake Kit and Stripe APIs answering errors), the faults done to
# it while events flow, and a checker that accounts for every event.
#
#   use StripeSync::Chaos;
#   my $run = StripeSync::Chaos->new(events => 400, seed => 42);
#   my $res = $run->run;            # generate, start, send + chaos, drain, check
#   $res->{figures}{lost}           # 0
#   $res->{problems}{duplicated}    # [] (one line per problem, by kind)
#   print $run->figures_table;
#
# The pieces, usable alone:
#   ->generate          the events (->events), the Stripe fake's seed
#   ->start_stack       Redis (appendonly yes, appendfsync always), nginx x2
#                       (2 workers each), fake Kit (OAuth, faults) and
#                       Stripe (seeded, faults), consumers x2
#   ->start_sender      the sender, a background process: ->sender_done,
#                       ->sender_summary
#   ->chaos($action)    redis_kill (SIGKILL, down redis_down s, restart on
#                       the same port and dir: the AOF is loaded) |
#                       consumer_kill (SIGKILL while it holds jobs; restart
#                       under a new id, or the same id, in turn) |
#                       nginx_reload (both) | nginx_worker_kill (SIGKILL
#                       the busiest worker while Redis stalls: it dies
#                       with requests in hand; the master respawns it)
#   ->wait_idle($s)     queue, retry zset and every processing list empty
#   ->check             figures + problems
#
# The sender behaves as Stripe does: every delivery is retried on any
# non-2xx answer and on every connection error, with a backoff (50 ms
# doubling to 1 s here), signed anew each attempt, to either nginx (a load
# balancer); about 10% of events are delivered once more later (a
# duplicate, maybe to the other nginx); the order is shuffled; at most
# `concurrency` requests are in flight (forked workers); sending is paced
# over `send_seconds` and stops at `deadline`. About 5% of the events are
# forged: their every request carries a bad signature (wrong secret, body
# changed after signing, timestamp out of tolerance, none, malformed, v0
# only); they must be refused (400) every time, and appear nowhere.
#
# What the consumers must do with each valid event is known in advance
# (the "effects" of its fact): Kit purchases (not idempotent at Kit: one
# per purchase fact, counted by transaction_id), tags and a sequence
# (idempotent: present at least once). Some customers are blocked by
# injected permanent failures (422 on their upsert, or on their purchases):
# exactly their jobs must end as dead letters.

use strict;
use warnings;

use HTTP::Tiny;
use IO::Handle;
use IO::Select;
use POSIX ();
use Socket qw(AF_UNIX SOCK_STREAM PF_UNSPEC);
use Time::HiRes qw(time sleep);
use Time::Local ();

use StripeSync::Test ();
use StripeSync::Fake ();

my $PDEATHSIG_OK = $^O eq 'linux' && (POSIX::uname())[4] eq 'x86_64';

# The rules the consumers run (besides preset = "convertkit", which gives
# purchase, renewal, payment_recovered, invoice_paid: upsert + purchase).
my @RULES = (
    { on => 'customer_created', tag => ['customer'] },
    { on => 'purchase', tag => ['buyer'], sequence => 'Onboarding' },
    { on => 'subscription_checkout', tag => ['subscription-checkout'] },
    { on => 'subscription_started', tag => ['member'] },
    { on => 'renewal', tag => ['renewed'] },
    { on => 'payment_failed', tag => ['dunning-{attempt_count}'] },
    { on => 'payment_recovered', tag => ['recovered'] },
    { on => 'refund', tag => ['refunded'] },
    { on => 'subscription_cancelled', tag => ['churned'] },
);

# Effects of an action at Kit with these rules, in plan order: [kind, name];
# a purchase's name is filled with its transaction id. Actions not listed
# have no rule (the job ends "skipped").
my %EFFECTS = (
    customer_created       => [ [ tag => 'customer' ] ],
    purchase               => [ [ 'purchase' ], [ tag => 'buyer' ],
                                [ sequence => 'Onboarding' ] ],
    subscription_checkout  => [ [ tag => 'subscription-checkout' ] ],
    subscription_started   => [ [ tag => 'member' ] ],
    renewal                => [ [ 'purchase' ], [ tag => 'renewed' ] ],
    payment_failed         => [ [ tag => 'dunning-%a' ] ],
    payment_recovered      => [ [ 'purchase' ], [ tag => 'recovered' ] ],
    refund                 => [ [ tag => 'refunded' ] ],
    subscription_cancelled => [ [ tag => 'churned' ] ],
);

# Actions whose job is skipped when older than the subscription's watermark.
my %STALEABLE = map { $_ => 1 } qw(subscription_started subscription_cancelled
    subscription_paused subscription_resumed subscription_updated plan_changed
    subscription_cancel_scheduled trial_ending);

my @FIRST = qw(Ada Grace Alan Edsger Barbara Donald Margaret Ken Dennis Radia
    Frances Katherine John Hedy Sophie Tim Linus Guido Yukihiro Bjarne Niklaus
    Leslie Shafi Adele Jean Mary Annie Evelyn Joan Ida Claude Rosalind Lynn
    Carol Dorothy Shirley Hal Butler Anita Karen);
my @LAST = qw(Lovelace Hopper Turing Dijkstra Liskov Knuth Hamilton Thompson
    Ritchie Perlman Allen Johnson Backus Lamarr Wilson Berners-Lee Torvalds
    Rossum Matsumoto Stroustrup Wirth Lamport Goldwasser Goldberg Sammet
    Easley Clarke Bartik Shannon Franklin Conway Shaw Hoare Borg Spärck);

my @PRODUCTS = (
    { product => 'prod_COURSE', price => 'price_COURSE_249', amount => 24900,
      description => 'Course: Writing for the web' },
    { product => 'prod_EBOOK', price => 'price_EBOOK_19', amount => 1900,
      description => 'E-book: The pocket guide' },
    { product => 'prod_WORKSHOP', price => 'price_WORKSHOP_99', amount => 9900,
      description => 'Live workshop seat' },
);
my @PLANS = (
    { product => 'prod_MEMBERSHIP', price => 'price_MEMBER_MONTHLY', amount => 2900,
      description => 'Membership (monthly)' },
    { product => 'prod_MEMBERSHIP', price => 'price_MEMBER_PRO', amount => 7900,
      description => 'Membership Pro (monthly)' },
);

my @BAD_MODES = qw(wrong_secret tampered stale future none malformed v0_only);

# ============================================================ setup ===

# new(%o):
#   events        ~ valid events to generate (whole customer stories: a
#                 few more)                                    (400)
#   seed          the PRNG seed (printed by figures_table)      (time ^ pid)
#   bad_ratio     forged events per valid event                 (0.05)
#   dup_ratio     events delivered once more later              (0.10)
#   concurrency   requests in flight                            (8)
#   send_seconds  first deliveries spread over this             (20)
#   deadline      the sender stops retrying after this (s)      (send_seconds + 40)
#   backoff       [first, max] delay between attempts (s)       ([0.05, 1])
#   perm_upsert   customers whose upsert Kit refuses (422)      (2)
#   perm_purchase customers whose purchases Kit refuses (422)   (2)
#   kit_faults    transient faults at Kit (spread over the run) (events / 8)
#   stripe_faults transient faults at the Stripe API            (events / 40)
#   kit_429_plain this many 429s without Retry-After at Kit (Kit's own
#                 answer): the consumer then pauses Kit for 60 s  (0)
#   redis_down    seconds Redis stays down when killed          (1)
#   stall         seconds of Redis stall (DEBUG SLEEP) while an nginx
#                 worker is killed, so it dies with requests in hand (1)
#   redis_appendonly  'always' | 'everysec' | undef (no persistence: to
#                 see what the checker reports when Redis forgets) ('always')
#   schedule      [[at seconds, action], ...]                   (one of each)
#   heartbeat     the consumers' heartbeat (s): keep 2 of them longer than
#                 a Redis outage plus the consumers' reconnect backoff
#                 (up to 5 s), else a consumer takes a live one's jobs
#                 (docs/reliability.md, known gaps)             (2)
#   consumer_concurrency (8), idle_timeout (60), log (a sub for progress)
sub new {
    my ($class, %o) = @_;
    my $self = bless {
        events => 400, seed => (time ^ ($$ << 8)) & 0x7fffffff,
        bad_ratio => 0.05, dup_ratio => 0.10, concurrency => 8,
        send_seconds => 20, backoff => [ 0.05, 1 ], perm_upsert => 2,
        perm_purchase => 2, kit_429_plain => 0, heartbeat => 2, redis_down => 1,
        redis_appendonly => 'always', stall => 1,
        consumer_concurrency => 8, prefix => 'chaos',
        secret => 'whsec_chaos_0123456789abcdef', %o,
    }, $class;
    $self->{n_valid} = $self->{events};
    $self->{deadline} //= $self->{send_seconds} + 40;
    $self->{kit_faults} //= int($self->{n_valid} / 8) + 5;
    $self->{stripe_faults} //= int($self->{n_valid} / 40) + 3;
    $self->{idle_timeout} //= 60;
    $self->{log} //= sub { };
    $self->{dir} //= StripeSync::Test::temp_dir('chaos');
    $self->{schedule} //= $self->default_schedule;
    return $self;
}

# One of each fault, spread over the sending: a worker of nginx A killed,
# Redis killed, both nginx reloaded, consumer B killed (and restarted under
# a new id: its jobs come back by the heartbeat), Redis killed again.
sub default_schedule {
    my ($self) = @_;
    my $s = $self->{send_seconds};
    return [ [ 0.15 * $s, 'nginx_worker_kill' ], [ 0.30 * $s, 'redis_kill' ],
             [ 0.45 * $s, 'nginx_reload' ], [ 0.60 * $s, 'consumer_kill' ],
             [ 0.80 * $s, 'redis_kill' ] ];
}

# The same, every `every` seconds over the sending (the larger run).
sub cyclic_schedule {
    my ($self, $every) = @_;
    my @s;
    my @cycle = qw(nginx_worker_kill redis_kill nginx_reload consumer_kill);
    my $k = 0;
    for (my $t = 0.05 * $self->{send_seconds}; $t < 0.95 * $self->{send_seconds};
         $t += $every / @cycle) {
        push @s, [ $t, $cycle[ $k++ % @cycle ] ];
    }
    return \@s;
}

sub events   { $_[0]{events_list} }
sub dir      { $_[0]{dir} }
sub redis    { $_[0]{redis} }
sub nginx    { @{ $_[0]{nginx} } }
sub kit      { $_[0]{kit} }
sub stripe   { $_[0]{stripe} }
sub key      { "{$_[0]{prefix}}:$_[1]" }
sub killed_workers { map { $_->killed_workers } @{ $_[0]{nginx} || [] } }

sub _say { my $self = shift; $self->{log}->(sprintf '[%6.1fs] %s',
    time - ($self->{t0} // time), join '', @_) }

# ======================================================= the events ===

my @B62 = ('0' .. '9', 'A' .. 'Z', 'a' .. 'z');
sub _rid { my ($p, $n) = @_; $p . '_' . join '', map { $B62[ int rand 62 ] } 1 .. ($n // 24) }
sub _pick { $_[ int rand @_ ] }
sub _chance { rand() < $_[0] }

# Builds the events: whole customer stories until `events` valid events,
# plus the forged ones; shuffled. Each event:
#   { i, id, type, action, body, created, customer, email, fact (the
#     module's once key, or undef), effects [[kind, name]...], ignored,
#     perm ('upsert' | 'purchase' | undef), bad (a mode, forged only) }
sub generate {
    my ($self) = @_;
    srand $self->{seed};
    my (@valid, @bad);
    my %cust;
    my $n = 0;
    my ($pu, $pp) = ($self->{perm_upsert}, $self->{perm_purchase});
    while (@valid < $self->{n_valid} || $pu > 0 || $pp > 0) {
        my $perm = $pu > 0 ? ($pu--, 'upsert') : $pp > 0 ? ($pp--, 'purchase') : undef;
        my $c = $self->_customer(++$n, $perm);
        $cust{ $c->{id} } = $c;
        # blocked customers all subscribe: they have purchases and more
        push @valid, $perm || _chance(0.6) ? $self->_story_subscriber($c)
                                           : $self->_story_oneoff($c);
    }
    # a type the module does not handle: 200 "ignored", never queued
    push @valid, $self->_event('product.created', { id => _rid('prod', 14),
        object => 'product', name => "New product $_", active => JSON::PP::true },
        int(time) - 86400) for 1 .. int($self->{n_valid} / 100) + 1;
    my $want_bad = int($self->{bad_ratio} * @valid + 0.5) || 1;
    while (@bad < $want_bad) {
        my $c = $self->_customer(++$n, undef, 'forged');
        push @bad, _chance(0.5) ? $self->_story_subscriber($c) : $self->_story_oneoff($c);
    }
    splice @bad, $want_bad;
    for my $e (@bad) {
        $e->{bad} = _pick(@BAD_MODES);
        $e->{effects} = [];
    }
    my @all = (@valid, @bad);
    for my $i (reverse 1 .. $#all) {    # Fisher-Yates
        my $j = int rand($i + 1);
        @all[ $i, $j ] = @all[ $j, $i ];
    }
    $all[$_]{i} = $_ for 0 .. $#all;
    $self->{events_list} = \@all;
    $self->{customers} = \%cust;
    return \@all;
}

sub _customer {
    my ($self, $n, $perm, $forged) = @_;
    my ($f, $l) = (_pick(@FIRST), _pick(@LAST));
    (my $le = lc $l) =~ s/[^a-z]//g;
    my $email = $forged ? "mallory.$n\@example.net"
              : $perm && $perm eq 'upsert' ? lc("blocked.$f.$n\@example.org")
              : $perm ? lc("nopay.$f.$n\@example.org")
              : lc("$f.$le.$n\@example.org");
    my $c = { id => _rid('cus', 14), email => $email, name => "$f $l",
              perm => $perm, forged => $forged ? 1 : 0,
              t => int(time) - 100 * 86400 + int rand(10 * 86400) };
    push @{ $self->{stripe_seed}{customers} }, { id => $c->{id},
        object => 'customer', email => $email, name => $c->{name},
        created => $c->{t}, livemode => JSON::PP::true, metadata => {} }
        unless $forged;
    return $c;
}

# One event: the body and what is known of it. $action / $fact as the
# module computes them; effects from %EFFECTS.
sub _event {
    my ($self, $type, $obj, $created, %o) = @_;
    my $id = _rid('evt');
    my $api = $o{api_version} // '2025-03-31.basil';
    my $body = StripeSync::Test::make_event(type => $type, object => $obj,
        id => $id, created => $created, livemode => 1, api_version => $api,
        extra => { request => { id => _rid('req', 14), idempotency_key => undef },
                   ($o{previous} ? (data => { object => $obj,
                       previous_attributes => $o{previous} }) : ()) });
    my $c = $o{customer};
    my $action = $o{action};
    my @eff;
    for my $x (@{ $EFFECTS{ $action // '' } || [] }) {
        my ($kind, $name) = @$x;
        $name = $o{tid} if $kind eq 'purchase';
        $name =~ s/%a/$o{attempt}/ if defined $name && defined $o{attempt};
        push @eff, [ $kind, $name ];
    }
    my $perm = $c ? $c->{perm} : undef;
    return { id => $id, type => $type, action => $action, body => $body,
             created => $created, customer => $c ? $c->{id} : undef,
             email => $c ? $c->{email} : undef, fact => $o{fact},
             effects => \@eff, ignored => $action ? 0 : 1,
             staleable => $STALEABLE{ $action // '' } ? 1 : 0,
             perm => !$perm ? undef
                   : $perm eq 'upsert' ? (@eff ? 'upsert' : undef)
                   : (grep { $_->[0] eq 'purchase' } @eff) ? 'purchase' : undef,
             forged => $c && $c->{forged} ? 1 : 0 };
}

sub _legacy { _chance(0.35) }

# invoice object, basil or legacy shaped
sub _invoice {
    my ($self, %o) = @_;
    my $p = $o{plan};
    my $c = $o{c};
    my $legacy = $o{legacy};
    my $line = { id => _rid('il', 24), object => 'line_item', amount => $p->{amount},
        currency => 'usd', description => "1 × $p->{description}", quantity => 1,
        period => { start => $o{created}, end => $o{created} + 30 * 86400 } };
    if ($legacy) {
        $line->{price} = { id => $p->{price}, object => 'price',
            product => $p->{product}, unit_amount => $p->{amount}, currency => 'usd' };
    } else {
        $line->{pricing} = { type => 'price_details', price_details => {
            price => $p->{price}, product => $p->{product} } };
    }
    my $paid = $o{status} eq 'paid';
    return {
        id => $o{id}, object => 'invoice', customer => $c->{id},
        customer_email => $c->{email}, customer_name => $c->{name},
        amount_due => $p->{amount}, amount_paid => $paid ? $p->{amount} : 0,
        amount_remaining => $paid ? 0 : $p->{amount}, currency => 'usd',
        attempt_count => $o{attempt_count}, attempted => JSON::PP::true,
        billing_reason => $o{billing_reason}, status => $o{status},
        collection_method => 'charge_automatically', created => $o{created},
        number => uc(substr($c->{id}, 4, 8)) . '-' . sprintf('%04d', $o{seq}),
        ($legacy ? (subscription => $o{sub})
                 : (parent => { type => 'subscription_details',
                        subscription_details => { subscription => $o{sub},
                                                  metadata => {} } })),
        lines => { object => 'list', has_more => JSON::PP::false, data => [$line],
                   total_count => 1 },
        metadata => {},
    };
}

sub _subscription {
    my ($self, %o) = @_;
    my $p = $o{plan};
    return {
        id => $o{id}, object => 'subscription', customer => $o{c}{id},
        status => $o{status}, currency => 'usd', start_date => $o{start},
        created => $o{start}, cancel_at_period_end => $o{cancel_at_period_end}
            ? JSON::PP::true : JSON::PP::false,
        canceled_at => $o{canceled_at}, ended_at => $o{canceled_at},
        cancellation_details => { reason => $o{reason}, comment => undef,
                                  feedback => undef },
        items => { object => 'list', has_more => JSON::PP::false, data => [ {
            id => 'si_' . substr($o{id}, 4, 14), object => 'subscription_item',
            quantity => 1, current_period_start => $o{start},
            current_period_end => $o{start} + 30 * 86400,
            price => { id => $p->{price}, object => 'price', product => $p->{product},
                       unit_amount => $p->{amount}, currency => 'usd',
                       recurring => { interval => 'month', interval_count => 1 } } } ] },
        metadata => {},
    };
}

# A buyer of one product: customer.created, maybe charge.succeeded and
# payment_intent.succeeded (no rule: skipped), the paid Checkout Session
# (purchase), maybe a refund.
sub _story_oneoff {
    my ($self, $c) = @_;
    my @ev;
    my $t = $c->{t};
    push @ev, $self->_event('customer.created', { id => $c->{id}, object => 'customer',
        email => $c->{email}, name => $c->{name}, created => $t, metadata => {},
        livemode => JSON::PP::true }, $t, customer => $c, action => 'customer_created');
    my $p = _pick(@PRODUCTS);
    my $cs = _rid('cs_live', 40);
    my $pi = _rid('pi', 24);
    my $ch = _rid('ch', 24);
    $t += 120 + int rand 3600;
    push @{ $self->{stripe_seed}{line_items}{$cs} }, {
        id => _rid('li', 24), object => 'item', amount_subtotal => $p->{amount},
        amount_total => $p->{amount}, currency => 'usd', description => $p->{description},
        quantity => 1, price => { id => $p->{price}, object => 'price',
            product => $p->{product}, unit_amount => $p->{amount}, currency => 'usd' } }
        unless $c->{forged};
    my $charge = { id => $ch, object => 'charge', amount => $p->{amount},
        amount_captured => $p->{amount}, amount_refunded => 0, currency => 'usd',
        customer => $c->{id}, paid => JSON::PP::true, captured => JSON::PP::true,
        status => 'succeeded', payment_intent => $pi, refunded => JSON::PP::false,
        billing_details => { email => $c->{email}, name => $c->{name} },
        receipt_email => $c->{email}, created => $t,
        payment_method_details => { type => 'card', card => { brand => 'visa',
            last4 => '4242', exp_month => 1 + int rand 12, exp_year => 2027 + int rand 5 } },
        metadata => {} };
    push @ev, $self->_event('charge.succeeded', $charge, $t, customer => $c,
        action => 'charge_succeeded') if _chance(0.5);
    push @ev, $self->_event('payment_intent.succeeded', { id => $pi,
        object => 'payment_intent', amount => $p->{amount}, amount_received => $p->{amount},
        currency => 'usd', customer => $c->{id}, status => 'succeeded',
        receipt_email => $c->{email}, latest_charge => $ch, created => $t,
        metadata => {} }, $t, customer => $c, action => 'payment_succeeded')
        if _chance(0.3);
    push @ev, $self->_event('checkout.session.completed', { id => $cs,
        object => 'checkout.session', mode => 'payment', payment_status => 'paid',
        status => 'complete', customer => $c->{id}, customer_email => undef,
        customer_details => { email => $c->{email}, name => $c->{name} },
        amount_total => $p->{amount}, amount_subtotal => $p->{amount},
        currency => 'usd', payment_intent => $pi, created => $t, metadata => {} },
        $t + 1, customer => $c, action => 'purchase', fact => "purchase:$cs",
        tid => $cs);
    if (_chance(0.25)) {
        my $amt = _chance(0.5) ? $p->{amount} : int($p->{amount} / 2);
        $t += 86400 * (1 + int rand 10);
        push @ev, $self->_event('charge.refunded', { %$charge, amount_refunded => $amt,
            refunded => $amt == $p->{amount} ? JSON::PP::true : JSON::PP::false,
            refunds => { object => 'list', has_more => JSON::PP::false, data => [ {
                id => _rid('re', 24), object => 'refund', amount => $amt,
                charge => $ch, reason => 'requested_by_customer', status => 'succeeded' } ] } },
            $t, customer => $c, action => 'refund', fact => "refund:$ch:$amt");
    }
    return @ev;
}

# A member: customer.created, the subscription's Checkout Session, the
# subscription, its first invoice (invoice.paid and often also
# invoice.payment_succeeded: one fact), renewals, then maybe a failing
# invoice (payment_failed per attempt) that recovers or ends in a
# cancellation, or a scheduled cancellation. Stripe sometimes emits a
# second event for one change: a second customer.subscription.created.
sub _story_subscriber {
    my ($self, $c) = @_;
    my @ev;
    my $t = $c->{t};
    my $plan = _pick(@PLANS);
    my $sub = _rid('sub', 24);
    my $legacy = _legacy();
    my $api = $legacy ? '2024-06-20' : '2025-03-31.basil';
    my %ea = (customer => $c, api_version => $api);
    push @ev, $self->_event('customer.created', { id => $c->{id}, object => 'customer',
        email => $c->{email}, name => $c->{name}, created => $t, metadata => {},
        livemode => JSON::PP::true }, $t, %ea, action => 'customer_created');
    $t += 60 + int rand 3600;
    my $cs = _rid('cs_live', 40);
    push @{ $self->{stripe_seed}{line_items}{$cs} }, {
        id => _rid('li', 24), object => 'item', amount_subtotal => $plan->{amount},
        amount_total => $plan->{amount}, currency => 'usd',
        description => $plan->{description}, quantity => 1,
        price => { id => $plan->{price}, object => 'price', product => $plan->{product},
                   unit_amount => $plan->{amount}, currency => 'usd',
                   recurring => { interval => 'month', interval_count => 1 } } }
        unless $c->{forged};
    push @ev, $self->_event('checkout.session.completed', { id => $cs,
        object => 'checkout.session', mode => 'subscription', payment_status => 'paid',
        status => 'complete', customer => $c->{id}, subscription => $sub,
        customer_details => { email => $c->{email}, name => $c->{name} },
        amount_total => $plan->{amount}, amount_subtotal => $plan->{amount},
        currency => 'usd', created => $t, metadata => {} }, $t + 2, %ea,
        action => 'subscription_checkout');
    my $start = $t;
    my $sobj = $self->_subscription(id => $sub, c => $c, plan => $plan,
                                    start => $start, status => 'active');
    push @ev, $self->_event('customer.subscription.created', $sobj, $t, %ea,
        action => 'subscription_started', fact => "subscription_started:$sub");
    push @ev, $self->_event('customer.subscription.created', $sobj, $t, %ea,
        action => 'subscription_started', fact => "subscription_started:$sub")
        if _chance(0.05);
    my $seq = 1;
    my $inv = sub {
        my (%o) = @_;
        return $self->_invoice(id => _rid('in', 24), c => $c, plan => $plan,
            sub => $sub, seq => $seq++, legacy => $legacy, %o);
    };
    my $paid = sub {
        my ($in, $action, $created) = @_;
        my @t = ('invoice.paid');
        push @t, 'invoice.payment_succeeded' if _chance(0.6);
        @t = reverse @t if _chance(0.5);
        return map { $self->_event($_, $in, $created + 1, %ea, action => $action,
                        fact => "$action:$in->{id}", tid => $in->{id}) } @t;
    };
    my $in1 = $inv->(created => $t, billing_reason => 'subscription_create',
                     attempt_count => 1, status => 'paid');
    push @ev, $self->_event('invoice.finalized', { %$in1, status => 'open',
        amount_paid => 0, amount_remaining => $plan->{amount} }, $t, %ea,
        action => 'invoice_issued') if _chance(0.5);
    push @ev, $paid->($in1, 'purchase', $t);
    my $renewals = int rand 3;
    for (1 .. $renewals) {
        $t += 30 * 86400;
        my $in = $inv->(created => $t, billing_reason => 'subscription_cycle',
                        attempt_count => 1, status => 'paid');
        push @ev, $paid->($in, 'renewal', $t);
    }
    my $fate = rand;
    if ($fate < 0.35) {
        $t += 30 * 86400;
        my $fails = 1 + int rand 3;
        my $id = _rid('in', 24);
        for my $k (1 .. $fails) {
            my $in = $inv->(id => $id, created => $t, billing_reason => 'subscription_cycle',
                            attempt_count => $k, status => 'open');
            $seq--;
            push @ev, $self->_event('invoice.payment_failed', $in, $t + $k * 3 * 86400,
                %ea, action => 'payment_failed', fact => "payment_failed:$id:$k",
                attempt => $k);
        }
        if (_chance(0.6)) {
            my $in = $inv->(id => $id, created => $t, billing_reason => 'subscription_cycle',
                            attempt_count => $fails + 1, status => 'paid');
            push @ev, $paid->($in, 'payment_recovered', $t + ($fails + 1) * 3 * 86400);
        } else {
            my $end = $t + ($fails + 2) * 3 * 86400;
            push @ev, $self->_event('customer.subscription.deleted',
                $self->_subscription(id => $sub, c => $c, plan => $plan, start => $start,
                    status => 'canceled', canceled_at => $end, reason => 'payment_failed'),
                $end, %ea, action => 'subscription_cancelled',
                fact => "subscription_cancelled:$sub");
        }
    } elsif ($fate < 0.55) {
        $t += 10 * 86400;
        push @ev, $self->_event('customer.subscription.updated',
            $self->_subscription(id => $sub, c => $c, plan => $plan, start => $start,
                status => 'active', cancel_at_period_end => 1,
                reason => 'cancellation_requested'),
            $t, %ea, action => 'subscription_cancel_scheduled',
            previous => { cancel_at_period_end => JSON::PP::false });
        $t += 20 * 86400;
        push @ev, $self->_event('customer.subscription.deleted',
            $self->_subscription(id => $sub, c => $c, plan => $plan, start => $start,
                status => 'canceled', canceled_at => $t, reason => 'cancellation_requested'),
            $t, %ea, action => 'subscription_cancelled',
            fact => "subscription_cancelled:$sub");
    }
    return @ev;
}

# The body and Stripe-Signature header of one attempt (signed now; forged
# events signed wrong, each attempt anew).
sub signed {
    my ($self, $e) = @_;
    my $now = int time;
    my ($body, $s) = ($e->{body}, $self->{secret});
    my $m = $e->{bad} // '';
    return ($body, StripeSync::Test::sign_header($body, $s, $now)) if !$m;
    return ($body, StripeSync::Test::sign_header($body, 'whsec_not_the_endpoint_secret', $now))
        if $m eq 'wrong_secret';
    if ($m eq 'tampered') {
        (my $b2 = $body) =~ s/\}\z/,"tampered":true}/;
        return ($b2, StripeSync::Test::sign_header($body, $s, $now));
    }
    return ($body, StripeSync::Test::sign_header($body, $s, $now - 900)) if $m eq 'stale';
    return ($body, StripeSync::Test::sign_header($body, $s, $now + 900)) if $m eq 'future';
    return ($body, undef) if $m eq 'none';
    return ($body, "t=$now,v1=" . ('zz' x 32)) if $m eq 'malformed';
    return ($body, "t=$now,v0=" . StripeSync::Test::sign($body, $s, $now)) if $m eq 'v0_only';
    die "unknown bad mode $m";
}

# ========================================================= the stack ===

sub start_stack {
    my ($self) = @_;
    my $P = $self->{prefix};
    $self->{redis} = StripeSync::Test::start_redis(debug => 1,
        appendonly => $self->{redis_appendonly});
    my $rp = $self->{redis}->port;
    for my $k (0, 1) {
        push @{ $self->{nginx} }, StripeSync::Test::start_nginx(workers => 2,
            http => "stripe_sync_redis 127.0.0.1:$rp; stripe_sync_prefix $P;"
                    . " stripe_sync_redis_timeout 2s;",
            conf => "location = /stripe/webhook { stripe_sync;"
                    . " stripe_sync_secret $self->{secret}; }");
    }
    $self->{stripe} = StripeSync::Fake->new(api => 'stripe',
        seed => $self->{stripe_seed});
    $self->{kit} = StripeSync::Fake->new(api => 'kit',
        seed => { sequences => ['Onboarding'] });
    $self->_inject_faults;
    my $d = $self->{dir};
    $self->{secrets} = {
        kit_key => StripeSync::Test::write_secret($d, 'kit.key', $self->{kit}->key . "\n"),
        kit_oauth => StripeSync::Test::write_secret($d, 'kit.oauth', $self->{kit}->oauth . "\n"),
        stripe_key => StripeSync::Test::write_secret($d, 'stripe.key', $self->{stripe}->key . "\n"),
    };
    $self->{consumer_seq} = 0;
    $self->{consumers} = [ $self->start_consumer('a'), $self->start_consumer('b') ];
    return $self;
}

sub consumer_config {
    my ($self, $id) = @_;
    return {
        redis => '127.0.0.1:' . $self->{redis}->port, prefix => $self->{prefix},
        consumer_id => $id, heartbeat => $self->{heartbeat},
        concurrency => $self->{consumer_concurrency}, shutdown_grace => 5,
        retry => { max_attempts => 40, base_delay => 1, max_delay => 2 },
        provider => { type => 'kit', api_base => $self->{kit}->base,
            api_key_file => $self->{secrets}{kit_key},
            oauth_token_file => $self->{secrets}{kit_oauth},
            rate => 1000, burst => 100, timeout => 3 },
        stripe => { api_base => $self->{stripe}->url,
            api_key_file => $self->{secrets}{stripe_key}, rate => 1000, timeout => 3 },
        preset => 'convertkit',
        rules => \@RULES,
    };
}

# A consumer named chaos-<slot><n>; its log is <dir>/consumer-<id>.log.
sub start_consumer {
    my ($self, $slot, $id) = @_;
    $id //= "chaos-$slot" . ++$self->{consumer_seq};
    my $p = StripeSync::Test::start_consumer(name => "consumer-$id",
        dir => $self->{dir}, config => $self->consumer_config($id),
        log => "$self->{dir}/consumer-$id.log");
    $p->{consumer_id} = $id;
    $p->{slot} = $slot;
    push @{ $self->{consumer_logs} }, $p->{log};
    return $p;
}

# Transient faults spread over the run (skip: the fault waits for that
# many matching requests; all faults count them at once), and the
# permanent ones: 422 for the blocked customers' upserts and purchases.
# Faults that process the request before failing it (after => 1, or a
# hang with apply => 'after') hit purchases too: Kit committed, the answer
# is lost, and the consumer must find the purchase at Kit (GET /purchases)
# before it posts again (docs/reliability.md).
sub _inject_faults {
    my ($self) = @_;
    my $kit = $self->{kit};
    $kit->fault(method => 'POST', route => '/subscribers', body_like => 'blocked\.[a-z]+\.\d+@',
        status => 422, times => -1, name => 'permanent: upsert refused',
        body => { errors => ['Email address is invalid'] });
    $kit->fault(method => 'POST', route => '/purchases', body_like => 'nopay\.[a-z]+\.\d+@',
        status => 422, times => -1, name => 'permanent: purchase refused',
        body => { errors => ['Products is invalid'] });
    my $span = 2 * $self->{n_valid};    # ~ Kit requests in a run
    my @kinds = (
        [ 22, sub { (status => 503) } ],
        [ 12, sub { (status => 500) } ],
        [ 8,  sub { (status => 502, kind => 'nonjson') } ],
        [ 12, sub { (status => 429, retry_after => 1) } ],
        [ 14, sub { (hang => 0.2 + int(rand 12) / 10) } ],
        [ 5,  sub { (hang => 4) } ],        # over the consumer's 3 s timeout
        [ 5,  sub { (kind => 'close') } ],
        [ 5,  sub { (kind => 'truncated') } ],
        [ 10, sub { (status => 503, after => 1,
                     route => qr{^/(subscribers|tags/\d+/subscribers|purchases)$}) } ],
        [ 7,  sub { (hang => 4, apply => 'after', route =>
                     qr{^/(subscribers|tags/\d+/subscribers|sequences/\d+/subscribers|purchases)$}) } ],
    );
    my @f = $self->_spread($self->{kit_faults}, $span, \@kinds);
    # and always two purchases Kit records, then answers 503 (the purchases
    # are fewer than Kit's requests: within the first fifth of them)
    push @f, map { { status => 503, after => 1, method => 'POST', route => '/purchases',
                     skip => int rand($self->{n_valid} / 5), times => 1 } } 1 .. 2;
    # Kit's own 429 (no Retry-After): the consumer pauses Kit for 60 s
    push @f, $self->_spread($self->{kit_429_plain}, $span,
                            [ [ 1, sub { (status => 429, times => 1) } ] ]);
    @f = sort { $a->{skip} <=> $b->{skip} } @f;
    $kit->fault(%$_) for @f;
    $self->{kit_fault_count} = @f;

    my @skinds = (
        [ 30, sub { (status => 500) } ], [ 30, sub { (status => 503) } ],
        [ 25, sub { (status => 429) } ],    # no Retry-After: the backoff
        [ 15, sub { (hang => 4) } ],
    );
    my @s = $self->_spread($self->{stripe_faults}, $self->{n_valid} / 6, \@skinds);
    $self->{stripe}->fault(%$_) for @s;
    $self->{stripe_fault_count} = @s;
}

sub _spread {
    my ($self, $n, $span, $kinds) = @_;
    my $total = 0;
    $total += $_->[0] for @$kinds;
    my @f;
    for my $k (1 .. $n) {
        my $r = rand $total;
        my $kind;
        for (@$kinds) { $kind = $_; last if ($r -= $_->[0]) < 0 }
        my %f = $kind->[1]->();
        $f{skip} //= int rand $span;
        $f{times} //= 1 + int rand 3;
        $f{times} = 1 if defined $f{hang};
        push @f, \%f;
    }
    return sort { $a->{skip} <=> $b->{skip} } @f;
}

# ============================================================ chaos ===

# Runs one fault on the stack; returns a record {action, t, ok, what}.
sub chaos {
    my ($self, $action) = @_;
    my $t = time;
    my $rec = { action => $action, t => $t };
    my $ok = eval {
        if ($action eq 'redis_kill') {
            $self->{redis}->kill;
            sleep $self->{redis_down};
            $self->{redis}->start;
            # start() returns on any answer, -LOADING too: wait for the AOF
            StripeSync::Test::wait_until(sub {
                (eval { $self->{redis}->connect(timeout => 1)->command('PING') } // '')
                    eq 'PONG' }, 30, 0.01);
            $rec->{what} = sprintf 'Redis SIGKILLed, restarted on port %d%s: down %.2f s',
                $self->{redis}->port, $self->{redis_appendonly}
                ? ' (AOF reloaded)' : ' (no persistence: empty)', time - $t;
        } elsif ($action eq 'nginx_reload') {
            $_->reload for @{ $self->{nginx} };
            $rec->{what} = sprintf 'nginx -s reload, both: %.2f s', time - $t;
        } elsif ($action eq 'nginx_worker_kill') {
            # while Redis stalls (DEBUG SLEEP), so that the worker dies
            # with requests in hand whose script may run after all
            my $ng = $self->{nginx}[ $self->{worker_kills}++ % 2 ];
            my $stall = $self->{stall}
                ? $self->{redis}->cmd_nowait('DEBUG', 'SLEEP', $self->{stall}) : undef;
            sleep $self->{stall} * 0.6 if $stall;
            # the worker with the most sockets open: requests in hand
            my @w = sort { $b->[1] <=> $a->[1] || rand() <=> 0.5 }
                    map { [ $_, scalar grep { (readlink($_) // '') =~ /^socket:/ }
                                glob "/proc/$_/fd/*" ] } $ng->worker_pids;
            my $tk = time;
            my $pid = $ng->kill_worker($w[0][0]);
            my $respawn = time - $tk;
            eval { $stall->read_reply(5) } if $stall;
            $rec->{what} = sprintf 'nginx %s: worker %d SIGKILLed%s, respawned in %.2f s',
                $ng == $self->{nginx}[0] ? 'A' : 'B', $pid,
                $stall ? " during a $self->{stall} s Redis stall" : '', $respawn;
        } elsif ($action eq 'consumer_kill') {
            my $k = $self->{consumer_kills}++;
            my $slot = $k % 2 ? 'a' : 'b';
            my ($i) = grep { $self->{consumers}[$_]{slot} eq $slot } 0, 1;
            my $old = $self->{consumers}[$i];
            # when it holds jobs (within 3 s): they must come back
            my $pl = $self->key("processing:$old->{consumer_id}");
            my $held = StripeSync::Test::wait_until(sub {
                eval { $self->{redis}->cmd('LLEN', $pl) } }, 3, 0.003) // 0;
            my $tkill = time;
            $old->kill;
            # every other time under the same id (its own list back at
            # once), else a new one (the other consumer recovers the dead
            # one's list once its heartbeat expires)
            my $same = $k % 2;
            $self->{consumers}[$i] = $self->start_consumer($slot,
                $same ? $old->{consumer_id} : undef);
            $self->{consumers_gone}{ $old->{consumer_id} } = $tkill unless $same;
            $rec->{what} = sprintf 'consumer %s SIGKILLed holding %d job(s); restarted as %s',
                $old->{consumer_id}, $held, $self->{consumers}[$i]{consumer_id};
            push @{ $self->{consumer_kill_times} }, $tkill;
        } else {
            die "unknown chaos action $action\n";
        }
        1;
    };
    $rec->{ok} = $ok ? 1 : 0;
    $rec->{what} = "FAILED: $@" unless $ok;
    push @{ $self->{chaos_done} }, $rec;
    $self->_say("chaos: $rec->{what}");
    return $rec;
}

# ============================================================ sender ===

sub webhook_urls { map { $_->url('/stripe/webhook') } @{ $_[0]{nginx} } }

# Starts the sender in the background (a forked process, killed with the
# test). Its results: ->sender_summary once ->sender_done.
sub start_sender {
    my ($self) = @_;
    my @urls = $self->webhook_urls;
    $self->{sender_out} = "$self->{dir}/sender";
    mkdir $self->{sender_out};
    $self->{sender} = StripeSync::Test::spawn_sub(name => 'sender', dir => $self->{dir},
        code => sub { $self->_sender_main(urls => \@urls, out => $self->{sender_out}) });
    return $self->{sender};
}

sub sender_done { !$_[0]{sender}->alive }

sub sender_summary {
    my ($self) = @_;
    my $s = StripeSync::Test::slurp("$self->{sender_out}/summary.json");
    return $s ? StripeSync::Test::json_decode($s) : undef;
}

sub _sender_main {
    my ($self, %o) = @_;
    srand($self->{seed} ^ 0x5eed);
    my @urls = @{ $o{urls} };
    my $events = $self->{events_list};
    open my $alog, '>>', "$o{out}/attempts.jsonl" or die "attempts.jsonl: $!";
    $alog->autoflush(1);

    my @w;
    for my $k (1 .. $self->{concurrency}) {
        socketpair(my $p, my $c, AF_UNIX, SOCK_STREAM, PF_UNSPEC) or die "socketpair: $!";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $p;
            close $_->{sock} for @w;    # else they never see their EOF
            syscall(157, 1, 9) if $PDEATHSIG_OK;
            my $ok = eval { $self->_sender_worker($c); 1 };
            print STDERR "sender worker: $@" unless $ok;
            POSIX::_exit(0);
        }
        close $c;
        $p->autoflush(1);
        push @w, { sock => $p, pid => $pid, buf => '' };
    }

    my $t0 = time;
    my $deadline = $t0 + $self->{deadline};
    my $gap = $self->{send_seconds} / (@$events || 1);
    my @deliv;
    my @pending;    # deliveries by due time
    my $push = sub {
        my ($d) = @_;
        my ($lo, $hi) = (0, scalar @pending);
        while ($lo < $hi) {
            my $mid = ($lo + $hi) >> 1;
            if ($pending[$mid]{due} <= $d->{due}) { $lo = $mid + 1 } else { $hi = $mid }
        }
        splice @pending, $lo, 0, $d;
    };
    for my $e (@$events) {
        my $d = { k => scalar @deliv, ev => $e->{i}, dup => 0, attempts => 0,
                  due => $t0 + $e->{i} * $gap, first_url => $e->{i} % 2 };
        push @deliv, $d;
        $push->($d);
    }
    my %ev;    # per event: what happened
    my ($b0, $bmax) = @{ $self->{backoff} };
    my $busy = 0;
    my $sel = IO::Select->new;
    while (1) {
        my $now = time;
        for my $wk (@w) {
            last if !@pending || $pending[0]{due} > $now || $now > $deadline;
            next if $wk->{task};
            my $d = shift @pending;
            my $u = $d->{attempts} == 0 && !$d->{dup} ? $d->{first_url} : int rand 2;
            $wk->{task} = { d => $d, url => $u, t => $now };
            syswrite $wk->{sock}, StripeSync::Test::json_encode(
                { ev => $d->{ev}, url => $urls[$u] }) . "\n";
            $sel->add($wk->{sock});
            $busy++;
        }
        last if !$busy && (!@pending || $now > $deadline);
        my $wait = @pending ? $pending[0]{due} - $now : 0.05;
        $wait = 0.05 if $wait > 0.05 || $now > $deadline;
        $wait = 0.001 if $wait < 0.001;
        my @ready = $busy ? $sel->can_read($wait) : ();
        sleep $wait if !$busy;
        for my $fh (@ready) {
            my ($wk) = grep { $_->{sock} == $fh } @w;
            my $n = sysread $fh, $wk->{buf}, 65536, length $wk->{buf};
            die "sender: a worker died\n" unless $n;
            while ($wk->{buf} =~ s/^([^\n]*)\n//) {
                my $r = StripeSync::Test::json_decode($1);
                my $task = delete $wk->{task};
                $sel->remove($fh);
                $busy--;
                my $d = $task->{d};
                my $e = $events->[ $d->{ev} ];
                $d->{attempts}++;
                my $st = $r->{status};
                my $j = eval { StripeSync::Test::json_decode($r->{body} // '') } || {};
                my $kind = $st == 599 ? 'connection error'
                         : $st != 200 ? "HTTP $st"
                         : $j->{duplicate} ? 'duplicate'
                         : $j->{ignored} ? 'ignored'
                         : $j->{received} ? 'queued' : 'HTTP 200 ?';
                my $x = $ev{ $e->{id} } //= { id => $e->{id}, attempts => 0,
                    deliveries => 0, answers => {} };
                $x->{attempts}++;
                $x->{answers}{$kind}++;
                my $t = time;
                print {$alog} StripeSync::Test::json_encode({ k => $d->{k},
                    id => $e->{id}, dup => $d->{dup}, attempt => $d->{attempts},
                    url => $task->{url}, t => $task->{t}, ms => int(1000 * ($t - $task->{t})),
                    status => $st, kind => $kind,
                    ($st == 200 ? () : (body => substr($r->{body} // '', 0, 200))) }) . "\n";
                my $final;
                if ($e->{bad}) {
                    # Stripe retries 5xx and lost connections; a 400 is the
                    # refusal we want; a 2xx would be a forged event taken
                    $final = $st == 400 || ($st >= 200 && $st < 300)
                          || ($st >= 400 && $st < 500);
                } else {
                    $final = $st >= 200 && $st < 300;
                }
                if ($final) {
                    $x->{deliveries}++;
                    $x->{first} //= $kind unless $d->{dup};
                    $x->{dup_answer} = $kind if $d->{dup};
                    $x->{acked_t} //= $t if $st == 200;
                    if (!$e->{bad} && !$d->{dup} && rand() < $self->{dup_ratio}) {
                        my $dd = { k => scalar @deliv, ev => $d->{ev}, dup => 1,
                                   attempts => 0, due => $t + 0.2 + rand 4 };
                        push @deliv, $dd;
                        $push->($dd);
                    }
                } else {
                    $d->{due} = $t + ($b0 * 2 ** ($d->{attempts} - 1) < $bmax
                                      ? $b0 * 2 ** ($d->{attempts} - 1) : $bmax);
                    $push->($d);
                }
            }
        }
    }
    for my $wk (@w) {
        close $wk->{sock};
        waitpid $wk->{pid}, 0;
    }
    my @undelivered = map { $events->[ $_->{ev} ]{id} } @pending;
    my $sum = { t0 => $t0, t1 => time, events => \%ev, undelivered => \@undelivered,
                deliveries => scalar @deliv };
    StripeSync::Test::spew("$o{out}/summary.json.tmp", StripeSync::Test::json_encode($sum));
    rename "$o{out}/summary.json.tmp", "$o{out}/summary.json";
}

sub _sender_worker {
    my ($self, $sock) = @_;
    $sock->autoflush(1);
    my $ht = HTTP::Tiny->new(timeout => 10, keep_alive => 0,
                             agent => 'Stripe/1.0 (+https://stripe.com/docs/webhooks)');
    while (defined(my $line = <$sock>)) {
        my $t = StripeSync::Test::json_decode($line);
        my $e = $self->{events_list}[ $t->{ev} ];
        my ($body, $sig) = $self->signed($e);
        my %h = ('Content-Type' => 'application/json; charset=utf-8');
        $h{'Stripe-Signature'} = $sig if defined $sig;
        my $r = $ht->request('POST', $t->{url}, { headers => \%h, content => $body });
        print {$sock} StripeSync::Test::json_encode({ status => $r->{status} + 0,
            body => substr($r->{content} // '', 0, 300) }) . "\n";
    }
}

# ============================================================== run ===

# Waits until nothing is queued, waiting for a retry or held in a
# processing list, twice 0.3 s apart. Returns 1, or 0 after $timeout s.
sub is_idle {
    my ($self) = @_;
    my $c = eval { $self->{redis}->connect(timeout => 2) } or return 0;
    my $r = eval {
        return 0 if $c->command('LLEN', $self->key('queue'));
        return 0 if $c->command('ZCARD', $self->key('retry'));
        my $keys = $c->command('KEYS', $self->key('processing:*')) || [];
        for my $k (@$keys) { return 0 if $c->command('LLEN', $k) }
        1;
    };
    $c->close;
    return $r;
}

sub wait_idle {
    my ($self, $timeout) = @_;
    return StripeSync::Test::wait_until(sub {
        $self->is_idle && do { sleep 0.3; $self->is_idle };
    }, $timeout, 0.2);
}

# The whole run: generate, start, send while the schedule's faults
# happen, wait for the sender and for idle, check. Returns the check's
# result plus {chaos => [...], sender_ok, idle}.
sub run {
    my ($self) = @_;
    $self->generate unless $self->{events_list};
    $self->_say(sprintf 'seed %d: %d events (%d forged), %d customers',
        $self->{seed}, scalar @{ $self->{events_list} },
        scalar(grep { $_->{bad} } @{ $self->{events_list} }),
        scalar keys %{ $self->{customers} });
    $self->start_stack;
    $self->{t0} = time;
    $self->start_sender;
    $self->_say('sending');
    for my $step (sort { $a->[0] <=> $b->[0] } @{ $self->{schedule} }) {
        my ($at, $action) = @$step;
        sleep 0.05 while time < $self->{t0} + $at && !$self->sender_done;
        $self->chaos($action);
    }
    my $sent = StripeSync::Test::wait_until(sub { $self->sender_done },
        $self->{deadline} + 30, 0.1);
    $self->{t_sent} = time;
    $self->_say('sender done' . ($sent ? '' : ': NOT FINISHED'));
    my $idle = $self->wait_idle($self->{idle_timeout});
    $self->{t_idle} = time;
    $self->_say($idle ? 'idle' : 'NOT idle');
    # a consumer may still be writing its last log line
    sleep 0.3;
    my $res = $self->check;
    $res->{sender_ok} = $sent ? 1 : 0;
    $res->{idle} = $idle ? 1 : 0;
    $res->{chaos} = $self->{chaos_done} || [];
    $self->{result} = $res;
    return $res;
}

# =========================================================== checker ===

# Sends each command, then reads each reply (one round trip per 1000).
sub _pipeline {
    my ($conn, @cmds) = @_;
    my @out;
    while (my @chunk = splice @cmds, 0, 1000) {
        $conn->send(@$_) for @chunk;
        push @out, map { $conn->read_reply } @chunk;
    }
    return @out;
}

# Consumer log lines: event id -> [{outcome, attempt, consumer, line}]
sub consumer_outcomes {
    my ($self) = @_;
    my (%out, @other);
    for my $f (@{ $self->{consumer_logs} || [] }) {
        my $log = StripeSync::Test::slurp($f) // '';
        (my $cid = $f) =~ s{.*/consumer-(.*)\.log$}{$1};
        for my $l (split /\n/, $log) {
            if ($l =~ /\bevent=(\S+) action=(\S+) .*\boutcome=(\w+) attempt=(\d+)/) {
                push @{ $out{$1} }, { action => $2, outcome => $3, attempt => $4,
                                      consumer => $cid, line => $l };
            } else {
                push @other, "$cid: $l";
            }
        }
    }
    return (\%out, \@other);
}

# Checks every event; returns { figures => {..}, problems => {kind => [..]} }.
#
# For each valid event: it must be seen by Redis (its id's seen key), its
# fact queued once (the once key names the event queued for it), that
# event's job must have ended (done / skipped / stale / dead, from the
# consumer logs); a done job's effects must be at Kit: each purchase
# exactly once (by transaction_id), each tag on the customer and the
# sequence. Dead letters: exactly the jobs the permanent faults hit. The
# forged events: no seen key, no customer, nothing at Kit, no log line.
sub check {
    my ($self) = @_;
    my %prob = map { $_ => [] } qw(lost duplicated lost_acked bad_accepted
        bad_seen undelivered dead_unexpected dead_missing unexpected_purchase
        outcome leftover nginx_alerts consumer_died recovered_live);
    my %fig;
    my $events = $self->{events_list};
    my $sum = $self->sender_summary || { events => {}, undelivered => [] };
    my $redis = $self->{redis};
    my $conn = $redis->connect(timeout => 30);

    # --- what the sender saw
    my @att = map { StripeSync::Test::json_decode($_) }
        grep { /\S/ } split /\n/, StripeSync::Test::slurp("$self->{sender_out}/attempts.jsonl") // '';
    my %by_kind;
    $by_kind{ $_->{kind} }++ for @att;
    $fig{attempts} = @att;
    $fig{deliveries} = $sum->{deliveries} // 0;
    $fig{resends} = grep { $_->{dup} && $_->{attempt} == 1 } @att;
    $fig{http_503} = $by_kind{'HTTP 503'} // 0;
    $fig{connection_errors} = $by_kind{'connection error'} // 0;
    $fig{answered_queued} = $by_kind{queued} // 0;
    $fig{answered_duplicate} = $by_kind{duplicate} // 0;
    $fig{answered_ignored} = $by_kind{ignored} // 0;
    my @valid = grep { !$_->{bad} } @$events;
    my @bad = grep { $_->{bad} } @$events;
    $fig{events_valid} = @valid;
    $fig{events_forged} = @bad;
    my %bad_id = map { $_->{id} => 1 } @bad;
    # answered ones: a connection cut by a killed worker is no answer
    $fig{forged_requests} = grep { $bad_id{ $_->{id} } && $_->{status} != 599 } @att;
    $fig{forged_refused} = grep { $bad_id{ $_->{id} } && $_->{status} == 400 } @att;
    my %other;
    for (@att) {
        next if $_->{status} == 200 || $_->{status} == 503 || $_->{status} == 599;
        next if $_->{status} == 400 && $bad_id{ $_->{id} };
        $other{"$_->{kind}: " . ($_->{body} // '')}++;
    }
    $fig{other_answers} = \%other;
    $fig{send_seconds} = sprintf '%.1f', ($sum->{t1} // 0) - ($sum->{t0} // 0);
    push @{ $prob{undelivered} }, map { "$_: never answered 2xx before the sender's deadline" }
        @{ $sum->{undelivered} || [] };
    for my $e (@bad) {
        my $x = $sum->{events}{ $e->{id} } or next;
        push @{ $prob{bad_accepted} }, "$e->{id} ($e->{bad}): answered " . join(', ',
            map { "$_ x$x->{answers}{$_}" } sort keys %{ $x->{answers} })
            if grep { /queued|duplicate|ignored|200/ } keys %{ $x->{answers} };
    }

    # --- Redis: seen keys, once keys, leftovers
    my @seen = _pipeline($conn, map { [ 'EXISTS', $self->key("seen:$_->{id}") ] } @$events);
    my %seen = map { $events->[$_]{id} => $seen[$_] } 0 .. $#$events;
    my %facts;
    push @{ $facts{ $_->{fact} } }, $_ for grep { defined $_->{fact} } @valid;
    my @fk = sort keys %facts;
    my @once = _pipeline($conn, map { [ 'GET', $self->key("once:$_") ] } @fk);
    my %once = map { $fk[$_] => $once[$_] } 0 .. $#fk;
    my $dead = $conn->command('LRANGE', $self->key('dead'), 0, -1) || [];
    my @dead = map { StripeSync::Test::json_decode($_) } @$dead;
    my %dead_ids;
    $dead_ids{ $_->{record}{id} // '?' }++ for @dead;
    my $cust = $conn->command('HGETALL', $self->key('customers')) || [];
    my %cust = @$cust;
    my $stats = { @{ $conn->command('HGETALL', $self->key('stats')) || [] } };
    for my $k (@{ $conn->command('KEYS', $self->key('processing:*')) || [] }) {
        my $n = $conn->command('LLEN', $k);
        push @{ $prob{leftover} }, "$k holds $n job(s)" if $n;
    }
    for my $k ('queue', 'retry') {
        my $n = $conn->command($k eq 'retry' ? 'ZCARD' : 'LLEN', $self->key($k));
        push @{ $prob{leftover} }, $self->key($k) . " holds $n" if $n;
    }
    my $members = $conn->command('SMEMBERS', $self->key('consumers')) || [];
    my %live = map { $_->{consumer_id} => 1 } @{ $self->{consumers} };
    push @{ $prob{leftover} }, "{P}:consumers still lists $_, killed long ago"
        for grep { !$live{$_} } @$members;
    $conn->close;
    $fig{stats} = $stats;
    my $rlog = StripeSync::Test::slurp($redis->dir . '/redis.log') // '';
    $fig{aof_loads} = () = $rlog =~ /DB loaded from append only file/g;

    # --- processes: no alert but the killed workers', consumers alive
    my %killed = map { $_ => 1 } $self->killed_workers;
    for my $ng (@{ $self->{nginx} }) {
        push @{ $prob{nginx_alerts} }, grep {
            !(/worker process (\d+) exited on signal 9\b/ && $killed{$1}) } $ng->alerts;
    }
    push @{ $prob{consumer_died} }, map { "consumer $_->{consumer_id} exited: "
        . substr($_->output, -500) } grep { !$_->alive } @{ $self->{consumers} };

    # --- the consumers' logs
    my ($outc, $other_lines) = $self->consumer_outcomes;
    $fig{recovered_lines} = [ grep { /recovered \d+ job|requeued \d+ job/ } @$other_lines ];
    ($fig{jobs_recovered}) = (0);
    $fig{jobs_recovered} += $_ for map { /(?:recovered|requeued) (\d+) job/ ? $1 : () }
        @$other_lines;
    $fig{left_to_other} = grep { /no longer in this consumer's processing list/ } @$other_lines;
    my @waits = map { /provider \S+: asked to wait (\d+) ms/ ? $1 : () } @$other_lines;
    $fig{provider_pauses} = @waits;
    $fig{provider_pauses_60s} = grep { $_ >= 60000 } @waits;
    # taking the jobs of a consumer that was not dead: only those killed
    # (before the line) and never started again under their id are
    my %gone = %{ $self->{consumers_gone} || {} };
    push @{ $prob{recovered_live} }, grep {
        /: (\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d(?:\.\d+)?)Z recovered \d+ job\S* of consumer "([^"]+)"/
        && !($gone{$7} && Time::Local::timegm(int $6, $5, $4, $3, $2 - 1, $1) + ($6 - int $6) > $gone{$7})
    } @$other_lines;

    # --- Kit
    my $st = $self->{kit}->state;
    my %sub_email = map { $_->{id} => lc $_->{email_address} } values %{ $st->{subscribers} };
    my %tag_name = map { $_->{id} => $_->{name} } @{ $st->{tags} };
    my %has;    # "email\0kind\0name"
    for my $tid (keys %{ $st->{taggings} }) {
        $has{"$sub_email{$_}\0tag\0$tag_name{$tid}"} = 1 for keys %{ $st->{taggings}{$tid} };
    }
    my %seq_name = map { $_->{id} => $_->{name} } @{ $st->{sequences} };
    for my $qid (keys %{ $st->{sequence_subs} }) {
        $has{"$sub_email{$_}\0sequence\0$seq_name{$qid}"} = 1
            for keys %{ $st->{sequence_subs}{$qid} };
    }
    my %purchases;
    push @{ $purchases{ $_->{transaction_id} } }, $_ for @{ $st->{purchases} };
    $fig{kit_purchases} = @{ $st->{purchases} };
    my @kreq = $self->{kit}->requests(all => 1);
    $fig{kit_requests} = @kreq;
    $fig{kit_faulted} = grep { $_->{fault} } @kreq;
    # purchases Kit recorded whose answer the consumer never got
    $fig{purchase_answer_lost} = grep {
        $_->{method} eq 'POST' && $_->{route} eq '/purchases' && ($_->{fault} // '') =~
            /after processing|^hang ([3-9]|\d\d)/ && !(($_->{status} // 0) == 422) } @kreq;
    $fig{stripe_requests} = $self->{stripe}->count(all => 1);
    $fig{stripe_faulted} = grep { $_->{fault} } $self->{stripe}->requests(all => 1);

    # --- each valid event, by fact
    my %expected_tid;    # transaction id -> 1 when its purchase must be there once
    my %dead_expected;
    my %o_count = map { $_ => 0 } qw(done skipped stale dead);
    my %acct;            # queued event id -> done
    my $applied = 0;
    my $lost = 0;
    my %units;           # unit of account: fact key, or the event id
    for my $e (@valid) {
        next if $e->{ignored};
        push @{ $units{ $e->{fact} // $e->{id} } }, $e;
    }
    for my $e (@valid) {
        my $x = $sum->{events}{ $e->{id} };
        if ($x && $x->{acked_t} && !$seen{ $e->{id} } && !$e->{ignored}) {
            push @{ $prob{lost_acked} }, "$e->{id} ($e->{type}): answered 200 at "
                . sprintf('%.2f', $x->{acked_t} - $self->{t0}) . " s, but Redis has not seen it";
        }
        if ($e->{ignored} && $outc->{ $e->{id} }) {
            push @{ $prob{outcome} }, "$e->{id} ($e->{type}): an ignored type reached a consumer";
        }
    }
    # effects of a unit Redis does not know (it forgot: no persistence):
    # all at Kit -> applied, then forgotten; else lost
    my $at_kit = sub {
        my ($e) = @_;
        return 0 unless @{ $e->{effects} };
        for my $x (@{ $e->{effects} }) {
            return 0 if $x->[0] eq 'purchase' ? !$purchases{ $x->[1] }
                      : !$has{"$e->{email}\0$x->[0]\0$x->[1]"};
        }
        return 1;
    };
    $fig{forgotten} = 0;
    for my $u (sort keys %units) {
        my @es = @{ $units{$u} };
        my $e0 = $es[0];
        my $q = defined $e0->{fact} ? $once{$u} : $e0->{id};
        if (!defined $q || !$seen{$q}) {
            my $acked = grep { ($sum->{events}{ $_->{id} } || {})->{acked_t} } @es;
            if (!$e0->{perm} && (@{ $e0->{effects} } ? $at_kit->($e0) : $acked)) {
                $fig{forgotten}++;
                $expected_tid{ $_->[1] } = $e0->{id}
                    for grep { $_->[0] eq 'purchase' } @{ $e0->{effects} };
                next;
            }
            $lost++;
            push @{ $prob{lost} }, defined $e0->{fact}
                ? "$u: never queued (no once key; events "
                  . join(', ', map { $_->{id} } @es) . ')'
                : "$q ($e0->{type}): never seen by Redis";
            next;
        }
        if (defined $e0->{fact} && !grep { $_->{id} eq $q } @es) {
            push @{ $prob{outcome} }, "$u: once key names $q, not one of its events";
        }
        my ($e) = grep { $_->{id} eq $q } @es;
        $e //= $e0;
        my @fin = grep { $_->{outcome} =~ /^(done|skipped|stale|dead)$/ } @{ $outc->{$q} || [] };
        my %fo;
        $fo{ $_->{outcome} }++ for @fin;
        my $outcome = $fo{dead} ? 'dead' : $fo{done} ? 'done' : $fo{stale} ? 'stale'
                    : $fo{skipped} ? 'skipped' : undef;
        if (!$outcome) {
            if ($dead_ids{$q}) {
                $outcome = 'dead';
            } else {
                $lost++;
                push @{ $prob{lost} }, "$q ($e->{type}, $u): no job outcome in any consumer log"
                    . (@{ $outc->{$q} || [] } ? ': ' . join(' | ', map { $_->{line} } @{ $outc->{$q} }) : '');
                next;
            }
        }
        push @{ $prob{outcome} }, "$q: ended " . join(', ', map { "$_ x$fo{$_}" } sort keys %fo)
            if keys %fo > 1;
        $o_count{$outcome}++;
        my $should_die = $e->{perm} && $outcome ne 'stale';
        if ($should_die) {
            $dead_expected{$q} = $e;
            for my $x (grep { $_->[0] eq 'purchase' } @{ $e->{effects} }) {
                push @{ $prob{unexpected_purchase} }, "$q: $x->[1] recorded at Kit "
                    . scalar(@{ $purchases{ $x->[1] } }) . ' time(s), its job dead-lettered'
                    if $e->{perm} eq 'purchase' && $purchases{ $x->[1] };
            }
            push @{ $prob{dead_missing} }, "$q ($e->{action}, $e->{email}): ended $outcome, "
                . 'not dead-lettered by the injected 422' if $outcome ne 'dead';
            next;
        }
        if ($outcome eq 'dead') {
            push @{ $prob{dead_unexpected} }, "$q ($e->{action}, $e->{email}): dead-lettered: "
                . join(' | ', map { $_->{error} // '' } grep { ($_->{record}{id} // '') eq $q } @dead);
            next;
        }
        if ($outcome eq 'stale') {
            push @{ $prob{outcome} }, "$q ($e->{action}): stale, but not a state change"
                unless $e->{staleable};
            next;
        }
        if ($outcome eq 'skipped') {
            push @{ $prob{outcome} }, "$q ($e->{action}): skipped, but it has rules" if @{ $e->{effects} };
            $applied++;
            next;
        }
        # done: the effects
        my @miss;
        for my $x (@{ $e->{effects} }) {
            my ($kind, $name) = @$x;
            if ($kind eq 'purchase') {
                $expected_tid{$name} = $q;
                push @miss, "purchase $name" unless $purchases{$name};
            } else {
                push @miss, "$kind \"$name\"" unless $has{"$e->{email}\0$kind\0$name"};
            }
        }
        if (@miss) {
            $lost++;
            push @{ $prob{lost} }, "$q ($e->{action}, $e->{email}): done, but missing at Kit: "
                . join(', ', @miss);
        } else {
            $applied++;
        }
    }

    # --- purchases: exactly once each, none else
    my $dups = 0;
    my @kills = @{ $self->{consumer_kill_times} || [] };
    my @preq = grep { $_->{route} eq '/purchases' && $_->{method} eq 'POST'
                      && ($_->{status} // 0) == 201 } @kreq;
    my %preq;
    push @{ $preq{ $_->{json}{purchase}{transaction_id} // '' } }, $_ for @preq;
    $fig{duplicated_in_kill_window} = 0;
    for my $tid (sort keys %purchases) {
        my $n = @{ $purchases{$tid} };
        if (!$expected_tid{$tid}) {
            push @{ $prob{unexpected_purchase} }, "$tid: $n purchase(s) at Kit, none expected";
            next;
        }
        next if $n == 1;
        $dups++;
        # the documented window: the consumer was SIGKILLed after Kit
        # recorded the purchase, before the step was recorded in Redis
        my @r = sort { $a->{t} <=> $b->{t} } @{ $preq{$tid} || [] };
        my $win = @r >= 2 && grep { my $k = $_ * 1000;
            $r[0]{done_t} <= $k && $r[0]{done_t} >= $k - 2000 && $r[1]{t} > $k } @kills;
        $fig{duplicated_in_kill_window}++ if $win;
        push @{ $prob{duplicated} }, "$tid ($expected_tid{$tid}): $n purchases at Kit"
            . ($win ? ' (the first answered just before a consumer was SIGKILLed: the '
                      . 'at-least-once window of a non-idempotent call)' : '')
            . ': requests ' . join(', ', map { sprintf '#%d at %.3f (%s)', $_->{seq},
                $_->{t} / 1000 - $self->{t0}, $_->{fault} // 'ok' } @r);
    }

    # --- dead letters: exactly the injected ones
    for my $id (sort keys %dead_ids) {
        push @{ $prob{dead_unexpected} }, "$id: in {P}:dead $dead_ids{$id} times"
            if $dead_ids{$id} > 1;
        next if $dead_expected{$id};
        push @{ $prob{dead_unexpected} }, "$id: in {P}:dead, not an injected failure"
            unless grep { /^\Q$id\E / } @{ $prob{dead_unexpected} };
    }
    for my $id (sort keys %dead_expected) {
        push @{ $prob{dead_missing} }, "$id: expected in {P}:dead"
            unless $dead_ids{$id} || grep { /^\Q$id\E / } @{ $prob{dead_missing} };
    }

    # --- forged events: nowhere
    my %bad_email = map { lc($_->{email} // '') => 1 } @bad;
    my %bad_cus = map { ($_->{customer} // '') => 1 } @bad;
    for my $e (@bad) {
        push @{ $prob{bad_seen} }, "$e->{id} ($e->{bad}): seen by Redis" if $seen{ $e->{id} };
        push @{ $prob{bad_seen} }, "$e->{id} ($e->{bad}): a consumer processed it"
            if $outc->{ $e->{id} };
        push @{ $prob{bad_seen} }, "$e->{id} ($e->{bad}): dead-lettered" if $dead_ids{ $e->{id} };
    }
    push @{ $prob{bad_seen} }, "customer $_ of a forged event is in {P}:customers"
        for grep { $bad_cus{$_} } keys %cust;
    push @{ $prob{bad_seen} }, "Kit subscriber $_ is a forged event's"
        for grep { $bad_email{$_} } values %sub_email;
    my %bad_obj = map { $_ => 1 }
                  map { $_->{body} =~ /"id":"((?:cs_live|in|ch)_[A-Za-z0-9]+)"/g } @bad;
    for my $tid (keys %purchases) {
        push @{ $prob{bad_seen} }, "Kit purchase $tid belongs to a forged event"
            if $bad_obj{$tid} || grep { index($_->{body}, "\"$tid\"") >= 0 } @bad;
    }

    $fig{facts} = keys %units;
    $fig{outcomes} = \%o_count;
    $fig{applied} = $applied;
    $fig{lost} = $lost;
    $fig{lost_acked} = @{ $prob{lost_acked} };
    $fig{duplicated} = $dups;
    $fig{dead_letters} = @dead;
    $fig{dead_expected} = keys %dead_expected;
    $fig{consumer_retried} = $stats->{consumer_retried} // 0;
    $fig{ingest_duplicate} = ($stats->{ingest_duplicate} // 0);
    $fig{ingest_duplicate_fact} = ($stats->{ingest_duplicate_fact} // 0);
    $fig{chaos} = [ map { sprintf '%6.1f s  %s', $_->{t} - $self->{t0}, $_->{what} }
                    @{ $self->{chaos_done} || [] } ];
    $fig{drain_seconds} = sprintf '%.1f', ($self->{t_idle} // time) - ($self->{t_sent} // time);
    $fig{total_seconds} = sprintf '%.1f', ($self->{t_idle} // time) - ($self->{t0} // time);
    $fig{seed} = $self->{seed};
    return { figures => \%fig, problems => \%prob };
}

# The figures as a text table.
sub figures_table {
    my ($self, $res) = @_;
    $res //= $self->{result};
    my $f = $res->{figures};
    my $o = $f->{outcomes} || {};
    my @rows = (
        [ 'seed', $f->{seed} ],
        [ 'events sent (validly signed)', $f->{events_valid} ],
        [ 'facts among them (once-per-fact dedupe)', $f->{facts} ],
        [ 'forged events (bad signature)', $f->{events_forged} ],
        [ 'deliveries (incl. later resends)', "$f->{deliveries} ($f->{resends} resends)" ],
        [ 'HTTP attempts', $f->{attempts} ],
        [ '  200 queued', $f->{answered_queued} ],
        [ '  200 duplicate (absorbed)', $f->{answered_duplicate} ],
        [ '  200 ignored (type not handled)', $f->{answered_ignored} ],
        [ '  400 forged, refused', "$f->{forged_refused} of $f->{forged_requests} forged requests answered" ],
        [ '  503 (Redis down)', $f->{http_503} ],
        [ '  connection errors', $f->{connection_errors} ],
        (map { [ "  $_", $f->{other_answers}{$_} ] } sort keys %{ $f->{other_answers} || {} }),
        [ 'duplicates absorbed by Redis (event id / fact)',
          "$f->{ingest_duplicate} / $f->{ingest_duplicate_fact}" ],
        [ 'jobs: done / skipped / stale / dead',
          join(' / ', map { $o->{$_} // 0 } qw(done skipped stale dead)) ],
        [ 'consumer retries', $f->{consumer_retried} ],
        [ 'Kit pauses on 429 (of them 60 s: no Retry-After)',
          "$f->{provider_pauses} ($f->{provider_pauses_60s})" ],
        [ 'jobs taken back from killed consumers', $f->{jobs_recovered} ],
        [ 'Kit requests (faults injected)', "$f->{kit_requests} ($f->{kit_faulted})" ],
        [ 'Kit purchases applied, answer lost', $f->{purchase_answer_lost} ],
        [ 'Stripe API requests (faults injected)', "$f->{stripe_requests} ($f->{stripe_faulted})" ],
        [ 'Kit purchases', $f->{kit_purchases} ],
        [ 'applied (effects verified at Kit)', $f->{applied} ],
        [ 'dead letters (injected permanent failures)', "$f->{dead_letters} ($f->{dead_expected} expected)" ],
        [ 'lost (not applied at Kit)', $f->{lost} ],
        ($f->{forgotten} || $f->{lost_acked}
         ? ([ 'answered 200, then forgotten by Redis', $f->{lost_acked} ],
            [ 'applied, then forgotten by Redis', $f->{forgotten} ]) : ()),
        [ 'duplicated', $f->{duplicated} ],
        [ 'Redis restarts that loaded the AOF', $f->{aof_loads} ],
        [ 'time: sending / draining after / total', "$f->{send_seconds} s / $f->{drain_seconds} s / $f->{total_seconds} s" ],
    );
    my $w = 0;
    for (@rows) { $w = length $_->[0] if length $_->[0] > $w }
    my $out = join '', map { sprintf "%-*s  %s\n", $w, $_->[0], $_->[1] // 0 } @rows;
    $out .= "chaos:\n" . join('', map { "  $_\n" } @{ $f->{chaos} || [] });
    return $out;
}

# The problems, as text (empty when none).
sub problems_text {
    my ($self, $res, $max) = @_;
    $res //= $self->{result};
    $max //= 20;
    my $out = '';
    for my $k (sort keys %{ $res->{problems} }) {
        my @p = @{ $res->{problems}{$k} } or next;
        $out .= "$k: " . scalar(@p) . "\n";
        $out .= "  $_\n" for @p[ 0 .. ($#p < $max - 1 ? $#p : $max - 1) ];
    }
    return $out;
}

1;
