package StripeSync::Schema;

# A small OpenAPI 3.0 request checker for the fake providers (core Perl).
#
#   my $s = StripeSync::Schema->load("$root/t/fixtures/api-specs/kit.json",
#               prefix => '');                       # spec path prefix
#   my ($op, $tpl, $params, $why) = $s->operation('POST', '/v4/tags/7/subscribers');
#   # $why: 'no such path' | 'no such method' when $op is undef
#   my @errors = $s->check_request($op, $body_bytes, $content_type,
#                                  lenient_numbers => 0, strict_properties => 0);
#   my @errors = $s->validate($schema, $data, '$', %opts);   # any schema
#   $s->patch('post', '/v4/subscribers', sub { my ($schema) = @_; ... });
#   $s->add_operation('get', '/contacts/{id}/contactTags');   # spec gaps
#
# Supported keywords: $ref (local, "#/components/..."), type, nullable,
# properties, required, items, enum, oneOf / anyOf (at least one branch
# must match: the specs use oneOf for "string or number", never for
# exclusive alternatives), allOf, additionalProperties (false or a
# schema), minimum, maximum, minItems, maxItems, minLength, maxLength,
# maxProperties, format (date-time, email). readOnly properties are not
# required in requests.
#
# Options of validate/check_request:
#   lenient_numbers    an "integer"/"number" may be a numeric string and a
#                      "string" may be a number (ActiveCampaign: its own
#                      examples send ids as strings where the schema says
#                      integer, and its API takes either)
#   strict_properties  an object with "properties" and no
#                      additionalProperties refuses other members (what a
#                      JSON:API server like Klaviyo's does)
#
# JSON types are told apart from the decoded scalars' flags (B), so decode
# the body afresh (check_request does) and validate before using the values
# as strings.
#
# Parsed specs are cached with Storable under $TMPDIR (keyed by the file's
# size and mtime): the Klaviyo spec takes ~1.5 s to parse with JSON::PP.

use strict;
use warnings;

use B ();
use File::Spec;
use JSON::PP;
use Storable ();

my %LOADED;    # file -> parsed document, per process

sub load {
    my ($class, $file, %o) = @_;
    my $doc = $LOADED{$file} ||= _read($file);
    my $self = bless { file => $file, doc => $doc, prefix => $o{prefix} // '',
                       patched => {} }, $class;
    $self->_routes;
    return $self;
}

sub _read {
    my ($file) = @_;
    my @st = stat $file or die "schema: cannot stat $file: $!\n";
    my $dir = File::Spec->catdir(File::Spec->tmpdir, "stripe-sync-specs-$<");
    (my $base = $file) =~ s{.*/}{};
    my $cache = "$dir/$base.$st[7].$st[9].sto";
    if (-f $cache) {
        my $d = eval { Storable::retrieve($cache) };
        return $d if ref $d eq 'HASH';
    }
    open my $fh, '<:raw', $file or die "schema: cannot read $file: $!\n";
    local $/;
    my $doc = JSON::PP->new->utf8->decode(scalar <$fh>);
    mkdir $dir, 0700;
    my $tmp = "$cache.$$.tmp";
    if (eval { Storable::nstore($doc, $tmp) }) {
        rename $tmp, $cache or unlink $tmp;
    } else {
        unlink $tmp;
    }
    return $doc;
}

sub doc { $_[0]{doc} }

# Path templates -> regexes, literal segments before parameters so that
# /contacts/search never matches /contacts/{id}.
sub _routes {
    my ($self) = @_;
    my @r;
    for my $tpl (keys %{ $self->{doc}{paths} || {} }) {
        my @names;
        my $re = join '/', map {
            if (/^\{(.+)\}$/) { push @names, $1; '([^/]+)' }
            else { quotemeta $_ }
        } split m{/}, $tpl, -1;
        my $literal = () = $tpl =~ m#/[^{/][^/]*#g;
        push @r, { tpl => $tpl, re => qr/^$re$/, names => \@names,
                   literal => $literal };
    }
    @r = sort { $b->{literal} <=> $a->{literal} || $a->{tpl} cmp $b->{tpl} } @r;
    $self->{routes} = \@r;
}

# (operation, template, {param => value}) or (undef, undef, undef, why)
sub operation {
    my ($self, $method, $path) = @_;
    $path = $self->{prefix} . $path;
    my $found_path;
    for my $r (@{ $self->{routes} }) {
        my @v = $path =~ $r->{re} or next;
        @v = () if !@{ $r->{names} };
        $found_path //= $r->{tpl};
        my $item = $self->{doc}{paths}{ $r->{tpl} };
        my $op = $item->{ lc $method } or next;
        my %p;
        @p{ @{ $r->{names} } } = @v;
        return ($op, $r->{tpl}, \%p);
    }
    return (undef, undef, undef,
            defined $found_path ? 'no such method' : 'no such path');
}

# Replaces an operation's request schema by what $cb returns (given a deep
# copy of the current one, $refs resolved at its top level).
sub patch {
    my ($self, $method, $tpl, $cb) = @_;
    my $op = $self->{doc}{paths}{$tpl}{ lc $method }
        or die "schema patch: no $method $tpl\n";
    my $content = $op->{requestBody}{content} or die "schema patch: no body\n";
    for my $ct (keys %$content) {
        my $copy = _clone($self->resolve($content->{$ct}{schema}));
        $content->{$ct}{schema} = $cb->($copy) // $copy;
    }
    return $self;
}

# Declares an operation the spec file lacks (a route the real API has).
sub add_operation {
    my ($self, $method, $tpl, $op) = @_;
    my $paths = $self->{doc}{paths} ||= {};
    return $self if $paths->{$tpl} && $paths->{$tpl}{ lc $method };
    $paths->{$tpl}{ lc $method } = $op || { responses => {} };
    $self->_routes;
    return $self;
}

sub _clone {
    my ($v) = @_;
    return { map { $_ => _clone($v->{$_}) } keys %$v } if ref $v eq 'HASH';
    return [ map { _clone($_) } @$v ] if ref $v eq 'ARRAY';
    return $v;
}

sub resolve {
    my ($self, $s) = @_;
    my $n = 0;
    while (ref $s eq 'HASH' && defined $s->{'$ref'}) {
        die "schema: \$ref loop\n" if ++$n > 50;
        my $ref = $s->{'$ref'};
        $ref =~ m{^#/(.*)$} or die "schema: external \$ref $ref\n";
        my $t = $self->{doc};
        for my $k (split m{/}, $1) {
            $k =~ s/~1/\//g;
            $k =~ s/~0/~/g;
            $t = ref $t eq 'HASH' ? $t->{$k} : undef;
        }
        die "schema: unresolved \$ref $ref\n" unless defined $t;
        # siblings of $ref (nullable, description) are kept
        if (keys %$s > 1) {
            my %m = (%$t, %$s);
            delete $m{'$ref'};
            $m{'$ref'} = $t->{'$ref'} if defined $t->{'$ref'};
            $s = \%m;
        } else {
            $s = $t;
        }
    }
    return $s;
}

# The request body schema for a content type (its media type, parameters
# ignored): (schema, declared content types, required flag).
sub request_schema {
    my ($self, $op, $ctype) = @_;
    my $rb = $self->resolve($op->{requestBody}) or return (undef, [], 0);
    my $content = $rb->{content} || {};
    my $mt = lc(($ctype // '') =~ s/;.*//r);
    $mt =~ s/\s+//g;
    my @types = sort keys %$content;
    my $m = $content->{$mt};
    return ($m ? $m->{schema} : undef, \@types, $rb->{required} ? 1 : 0);
}

# Errors of a request body against the operation: an empty list when it
# fits (or when the operation takes no body and none came).
sub check_request {
    my ($self, $op, $body, $ctype, %o) = @_;
    my ($schema, $types, $required) = $self->request_schema($op, $ctype);
    my $has_body = defined $body && length $body;
    if (!@$types) {
        return () unless $has_body;
        return ();    # a body where none is described: servers ignore it
    }
    if (!$has_body) {
        return $required ? ('request body required') : ();
    }
    if (!$schema) {
        return ("Content-Type '" . ($ctype // '') . "' not accepted ("
                . join(', ', @$types) . ')');
    }
    my $data = eval { JSON::PP->new->utf8->allow_nonref->decode($body) };
    return ("body is not JSON: " . ($@ =~ s/ at \S+ line \d+.*//sr)) if $@;
    return $self->validate($schema, $data, '$', %o, request => 1);
}

sub _jtype {
    my ($v) = @_;
    return 'null' unless defined $v;
    my $r = ref $v;
    return 'object' if $r eq 'HASH';
    return 'array' if $r eq 'ARRAY';
    return 'boolean' if $r && eval { $v->isa('JSON::PP::Boolean') };
    return 'unknown' if $r;
    my $f = B::svref_2object(\$v)->FLAGS;
    return 'string' if $f & B::SVf_POK;
    if ($f & (B::SVf_IOK | B::SVf_NOK)) {
        return ($f & B::SVf_NOK) && $v != int($v) ? 'number' : 'integer';
    }
    return 'string';
}

sub _type_ok {
    my ($want, $got, $v, %o) = @_;
    return 1 if $want eq $got;
    return 1 if $want eq 'number' && $got eq 'integer';
    if ($o{lenient_numbers}) {
        return 1 if $want eq 'integer' && $got eq 'string' && $v =~ /^-?\d+$/;
        return 1 if $want eq 'number' && $got eq 'string'
                    && $v =~ /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;
        return 1 if $want eq 'string' && ($got eq 'integer' || $got eq 'number');
    }
    return 0;
}

sub _short {
    my ($v) = @_;
    my $s = eval { JSON::PP->new->canonical->allow_nonref->allow_blessed
                              ->convert_blessed->encode($v) } // '?';
    return length $s > 60 ? substr($s, 0, 57) . '...' : $s;
}

# Errors ("$.a.b[0]: why") of $data against $schema.
sub validate {
    my ($self, $schema, $data, $at, %o) = @_;
    $at //= '$';
    $schema = $self->resolve($schema);
    return () unless ref $schema eq 'HASH';
    my @e;
    my $t = _jtype($data);

    if ($t eq 'null') {
        return () if $schema->{nullable};
        # a schema that says nothing about types takes null too
        return () unless $schema->{type} || $schema->{properties}
                         || $schema->{enum} || $schema->{items};
        return ("$at: null not allowed");
    }

    for my $kw (qw(allOf)) {
        next unless $schema->{$kw};
        push @e, $self->validate($_, $data, $at, %o) for @{ $schema->{$kw} };
    }
    for my $kw (qw(oneOf anyOf)) {
        next unless $schema->{$kw};
        my @first;
        my $ok = 0;
        for my $alt (@{ $schema->{$kw} }) {
            my @a = $self->validate($alt, $data, $at, %o);
            if (!@a) { $ok = 1; last }
            @first = @a unless @first;
        }
        push @e, "$at: matches none of $kw (" . join('; ', @first) . ')'
            unless $ok;
    }

    if (my $want = $schema->{type}) {
        my @want = ref $want ? @$want : ($want);
        if (!grep { _type_ok($_, $t, $data, %o) } @want) {
            return (@e, "$at: expected " . join('|', @want) . ", got $t "
                    . _short($data));
        }
    }

    if ($schema->{enum}) {
        my $s = $t eq 'boolean' ? ($data ? 'true' : 'false') : _short($data);
        my $hit = grep {
            my $x = $_;
            defined $x && !ref $x && ($t eq 'string' || $t eq 'integer'
                || $t eq 'number') ? "$x" eq "$data"
            : _short($x) eq $s
        } @{ $schema->{enum} };
        push @e, "$at: " . _short($data) . " is not one of "
            . join(',', map { _short($_) } @{ $schema->{enum} }) unless $hit;
    }

    if ($t eq 'object') {
        my $props = $schema->{properties} || {};
        for my $r (ref $schema->{required} eq "ARRAY" ? @{ $schema->{required} } : ()) {
            next if exists $data->{$r};
            my $p = $self->resolve($props->{$r});
            next if $o{request} && ref $p eq 'HASH' && $p->{readOnly};
            push @e, "$at: required member '$r' missing";
        }
        my $ap = $schema->{additionalProperties};
        for my $k (sort keys %$data) {
            my $sub = "$at." . ($k =~ /^\w+$/ ? $k : _short($k));
            if (exists $props->{$k}) {
                my $p = $self->resolve($props->{$k});
                if ($o{request} && ref $p eq 'HASH' && $p->{readOnly}) {
                    next;    # servers ignore read-only members
                }
                push @e, $self->validate($p, $data->{$k}, $sub, %o);
            } elsif (ref $ap eq 'HASH') {
                push @e, $self->validate($ap, $data->{$k}, $sub, %o);
            } elsif ((defined $ap && !ref $ap && !$ap)
                     || (JSON::PP::is_bool($ap) && !$ap)) {
                push @e, "$sub: unknown member";
            } elsif ($o{strict_properties} && %$props && !defined $ap) {
                push @e, "$sub: unknown member";
            }
        }
        my $n = keys %$data;
        push @e, "$at: more than $schema->{maxProperties} members"
            if defined $schema->{maxProperties} && $n > $schema->{maxProperties};
    } elsif ($t eq 'array') {
        if ($schema->{items}) {
            my $i = 0;
            push @e, $self->validate($schema->{items}, $_, "$at\[" . $i++ . ']', %o)
                for @$data;
        }
        push @e, "$at: fewer than $schema->{minItems} items"
            if defined $schema->{minItems} && @$data < $schema->{minItems};
        push @e, "$at: more than $schema->{maxItems} items"
            if defined $schema->{maxItems} && @$data > $schema->{maxItems};
    } elsif ($t eq 'integer' || $t eq 'number'
             || ($t eq 'string' && $o{lenient_numbers}
                 && ($schema->{type} // '') =~ /^(integer|number)$/)) {
        push @e, "$at: $data < minimum $schema->{minimum}"
            if defined $schema->{minimum} && $data < $schema->{minimum};
        push @e, "$at: $data > maximum $schema->{maximum}"
            if defined $schema->{maximum} && $data > $schema->{maximum};
    } elsif ($t eq 'string') {
        my $len = length $data;
        push @e, "$at: shorter than $schema->{minLength}"
            if defined $schema->{minLength} && $len < $schema->{minLength};
        push @e, "$at: longer than $schema->{maxLength}"
            if defined $schema->{maxLength} && $len > $schema->{maxLength};
        my $f = $schema->{format} // '';
        if ($f eq 'date-time'
            && $data !~ /^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[-+]\d\d:?\d\d)?$/) {
            push @e, "$at: '$data' is not a date-time";
        } elsif ($f eq 'email' && $data !~ /^[^@\s]+@[^@\s]+$/) {
            push @e, "$at: '$data' is not an email address";
        }
    }
    return @e;
}

1;
