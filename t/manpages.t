# The man pages (man/) against the code, both ways: every nginx directive
# and variable, every command, option and dlq verb of the tool, every key,
# provider type, preset and action of the configuration is documented, and
# nothing is documented that the code does not have.
#
# The code side is read from the source (ngx_command_t table, getopt_long
# tables, config.c's key arrays); the built tool, when there is one, is
# asked too (--help of each command), so a parser that missed something
# shows up here rather than in a man page.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use StripeSync::Test;

my $root = repo_root();
my $man  = "$root/man";

# ------------------------------------------------------------- roff ---

# The text a roff line shows, without its macro, fonts and escapes.
sub roff_text {
    my ($line) = @_;
    my ($macro, $rest) = $line =~ /^\.(\w+)\s*(.*)$/ ? ($1, $2) : ('', $line);
    my $text = $rest;
    if ($macro ne '') {
        my @args;
        while ($rest =~ /\G\s*(?:"((?:[^"]|"")*)"|(\S+))/g) {
            push @args, defined $1 ? $1 : $2;
        }
        # .BR .IR .BI ... alternate fonts without spaces; .B .I join words
        $text = join(($macro =~ /^[BIR]{2}$/ ? '' : ' '), @args);
    }
    $text =~ s/\\f(?:\[\w*\]|\(..|.)//g;
    $text =~ s/\\\(dq/"/g;
    $text =~ s/\\\(em/--/g;
    $text =~ s/\\-/-/g;
    $text =~ s/\\&//g;
    $text =~ s/\\c$//;
    $text =~ s/\\e/\\/g;
    return $text;
}

# { 'SECTION' => [ [subsection or '', [lines]] ... ] } of a man page
sub man_sections {
    my ($file) = @_;
    my $src = slurp($file) // die "cannot read $file";
    my (%sec, $sh, $ss);
    for my $line (split /\n/, $src) {
        next if $line =~ /^\.\\"/;
        if ($line =~ /^\.SH\s+(.*)$/) {
            $sh = roff_text($1);
            $sh =~ s/^"|"$//g;
            push @{ $sec{$sh} }, [ '', [] ];
            next;
        }
        next unless defined $sh;
        if ($line =~ /^\.SS\s+(.*)$/) {
            ($ss = $1) =~ s/^"|"$//g;
            push @{ $sec{$sh} }, [ roff_text($ss), [] ];
            next;
        }
        push @{ $sec{$sh}[-1][1] }, $line;
    }
    return \%sec;
}

# the lines of one .SS of a section (or of the section's text before any)
sub sub_lines {
    my ($secs, $sh, $ss) = @_;
    for my $s (@{ $secs->{$sh} || [] }) {
        return $s->[1] if $s->[0] eq ($ss // '');
    }
    return undef;
}

sub sub_names {
    my ($secs, $sh) = @_;
    return [ grep { $_ ne '' } map { $_->[0] } @{ $secs->{$sh} || [] } ];
}

# the tag lines of the .TP items in @$lines, as text
sub tp_tags {
    my ($lines) = @_;
    my @tags;
    for my $i (0 .. $#$lines - 1) {
        push @tags, roff_text($lines->[$i + 1]) if $lines->[$i] =~ /^\.TP\b/;
    }
    return @tags;
}

# the first word of each tag: a key, a verb, a variable
sub tp_words {
    my ($lines) = @_;
    return [ map { (split /[\s,]+/, $_)[0] } tp_tags($lines || []) ];
}

# options a tag names ("-c, --config file" -> -c --config); a tag that does
# not start with a dash names a verb ("replay --all" -> verb replay)
sub tag_options {
    my ($tag) = @_;
    return (undef, (split /\s+/, $tag)[0]) unless $tag =~ /^-/;
    my @o = $tag =~ /(?:^|[\s,|\[(])(--?[A-Za-z][A-Za-z0-9-]*)/g;
    return (\@o, undef);
}

# two sets, both ways
sub same_set {
    my ($got, $want, $what) = @_;
    my %g = map { $_ => 1 } @$got;
    my %w = map { $_ => 1 } @$want;
    my @missing = sort grep { !$g{$_} } keys %w;
    my @extra   = sort grep { !$w{$_} } keys %g;
    ok(!@missing && !@extra, $what)
        or diag(join "\n",
                (@missing ? "not documented: @missing" : ()),
                (@extra ? "documented but not in the code: @extra" : ()));
}

sub c_strings {
    my ($text) = @_;
    return [ $text =~ /"((?:[^"\\]|\\.)*)"/g ];
}

# ============================================================ module ===

my ($cmds_src) = map { slurp($_) }
                 grep { (slurp($_) // '') =~ /ngx_command_t\s+\w+\[\]\s*=/ }
                 glob "$root/ngx_stripe_sync_module/*.c";
ok(defined $cmds_src, 'the module source has an ngx_command_t table')
    or BAIL_OUT('no ngx_command_t table in ngx_stripe_sync_module/');

my ($table) = $cmds_src =~ /ngx_command_t\s+\w+\[\]\s*=\s*\{(.*?)ngx_null_command/s;
my %directive;
while ($table =~ /\{\s*ngx_string\("(\w+)"\),\s*([A-Z0-9_|\s]+?),/g) {
    my ($name, $flags) = ($1, $2);
    my @ctx;
    push @ctx, 'http'     if $flags =~ /NGX_HTTP_MAIN_CONF/;
    push @ctx, 'server'   if $flags =~ /NGX_HTTP_SRV_CONF/;
    push @ctx, 'upstream' if $flags =~ /NGX_HTTP_UPS_CONF/;
    push @ctx, 'location' if $flags =~ /NGX_HTTP_LOC_CONF/;
    push @ctx, 'if'       if $flags =~ /NGX_HTTP_(?:SIF|LIF)_CONF/;
    $directive{$name} = join ', ', @ctx;
}
cmp_ok(scalar keys %directive, '>=', 10, 'directives read from the command table')
    or diag $table;

my ($vars_table) = $cmds_src =~ /ngx_http_variable_t\s+\w+\[\]\s*=\s*\{(.*?)ngx_http_null_variable/s;
my @variables = ($vars_table // '') =~ /ngx_string\("(\w+)"\)/g;
ok(@variables, 'variables read from the module');

my $m8 = man_sections("$man/ngx_http_stripe_sync_module.8");
same_set(sub_names($m8, 'DIRECTIVES'), [ keys %directive ],
         'ngx_http_stripe_sync_module(8) documents exactly the directives');

for my $d (sort keys %directive) {
    my $lines = sub_lines($m8, 'DIRECTIVES', $d) or next;
    my ($ctx) = map { /^Context:\s*(.*?)\s*$/ ? $1 : () } map { roff_text($_) } @$lines;
    is($ctx, $directive{$d}, "$d: Context as in the command table");
    ok((grep { roff_text($_) =~ /^Syntax:\s+\Q$d\E\b/ } @$lines),
       "$d: Syntax line names it");
}

same_set([ map { s/^\$//r } @{ tp_words(sub_lines($m8, 'VARIABLES')) } ],
         \@variables, 'ngx_http_stripe_sync_module(8) documents exactly the variables');

# ============================================================== tool ===

my $main_c = slurp("$root/src/main.c") // die;
my ($cmd_table) = $main_c =~ /command\s+commands\[\]\s*=\s*\{(.*?)\{\s*NULL/s;
my @commands;
my %run_fn;
while (($cmd_table // '') =~ /\{\s*"([\w-]+)",\s*(\w+),/g) {
    push @commands, $1;
    $run_fn{$1} = $2;
}
cmp_ok(scalar @commands, '>=', 7, 'commands read from main.c');

# the options of a command: the getopt_long tables of the file defining its
# run function
my %src_opts;
for my $c (@commands) {
    my $fn = $run_fn{$c};
    my ($file) = grep { (slurp($_) // '') =~ /^\Q$fn\E\(/m } glob "$root/src/*.c";
    ok($file, "$c: $fn defined in src/") or next;
    my $src = slurp($file);
    my %o;
    for my $block ($src =~ /struct option\s+\w+\[\]\s*=\s*\{(.*?)\};/sg) {
        $o{"--$1"} = 1 while $block =~ /\{\s*"([\w-]+)",\s*\w+_argument/g;
    }
    for my $optstring ($src =~ /getopt_long\(\s*argc,\s*argv,\s*"([^"]*)"/g) {
        $o{"-$_"} = 1 for grep { /\w/ } split //, $optstring;
    }
    $src_opts{$c} = [ sort keys %o ];
}

# before a command: main()'s own comparisons with argv[1]
my ($main_fn) = $main_c =~ /\nmain\(int argc.*?\n\{(.*?)\n\}/s;
my @top = ($main_fn // '') =~ /strcmp\(argv\[1\],\s*"([^"]+)"\)/g;
ok(@top, 'top-level options read from main()');

my @dlq_verbs = (slurp("$root/src/cmd_dlq.c") // '') =~ /strcmp\(verb,\s*"(\w+)"\)/g;
ok(@dlq_verbs, 'dlq verbs read from cmd_dlq.c');

my $m1 = man_sections("$man/stripe-sync.1");
same_set(sub_names($m1, 'COMMANDS'), \@commands,
         'stripe-sync(1) documents exactly the commands');

my %man_opts;
for my $c (@commands) {
    my $lines = sub_lines($m1, 'COMMANDS', $c) or next;
    my (%o, @verbs);
    for my $tag (tp_tags($lines)) {
        my ($opts, $verb) = tag_options($tag);
        $o{$_} = 1 for @{ $opts || [] };
        push @verbs, $verb if defined $verb;
    }
    $man_opts{$c} = [ sort keys %o ];
    same_set($man_opts{$c}, $src_opts{$c} || [],
             "stripe-sync(1) $c: exactly its options");
    same_set(\@verbs, $c eq 'dlq' ? \@dlq_verbs : [],
             "stripe-sync(1) $c: " . ($c eq 'dlq' ? 'exactly its verbs' : 'no verbs'));
}

my @man_top;
for my $tag (tp_tags(sub_lines($m1, 'OPTIONS') || [])) {
    push @man_top, split /,\s*/, $tag;
}
same_set(\@man_top, \@top, 'stripe-sync(1) OPTIONS: exactly what main() takes before a command');

# the built tool agrees: its command list, and every option its help shows
my $tool = tool_path();
SKIP: {
    skip "tool not built ($tool)", 2 + @commands unless -x $tool;
    my $help = `$tool --help 2>&1`;
    my ($list) = $help =~ /^commands:\n(.*?)\n\n/ms;
    same_set([ ($list // '') =~ /^\s+([\w-]+)\s/mg ], \@commands,
             'stripe-sync --help lists the commands main.c has');
    my $v = `$tool --version 2>&1`;
    my ($th_version) = (slurp("$man/stripe-sync.1") // '') =~ /^\.TH .*?"stripe\\-sync ([^"]+)"/m;
    like($v, qr/^stripe-sync \Q$th_version\E$/m, 'stripe-sync(1) .TH has the tool\'s version')
        if defined $th_version;
    ok(defined $th_version, 'stripe-sync(1) .TH names a version') unless defined $th_version;
    for my $c (@commands) {
        my $out = `$tool $c --help 2>&1`;
        my $st = $?;
        $out =~ s/^commands:\n.*?\n\n//ms;    # other commands' summaries
        my %known = map { $_ => 1 } @{ $man_opts{$c} || [] }, @top;
        my @unknown = grep { !$known{$_} }
                      $out =~ /(?:^|[\s,\[(|])(--[a-z][a-z-]*)/g;
        ok(!@unknown && $st == 0, "stripe-sync $c --help: every option it shows is documented")
            or diag "exit $st; not in stripe-sync(1) $c: @unknown";
    }
}

# ============================================================ config ===

my $config_c = slurp("$root/src/config.c") // die;
my %arrays;
while ($config_c =~ /static const char \*(\w+)\[\]\s*=\s*\{(.*?)\};/sg) {
    $arrays{$1} = c_strings($2);
}

# config.c's arrays and where stripe-sync.conf(5) lists their names
my %where = (
    top_keys       => [ 'SETTINGS', 'Top level' ],
    stripe_keys    => [ 'SETTINGS', 'stripe' ],
    provider_keys  => [ 'SETTINGS', 'provider' ],
    retry_keys     => [ 'SETTINGS', 'retry' ],
    rule_keys      => [ 'RULES', 'Conditions', 'Operations' ],
    provider_types => [ 'PROVIDER TYPES', '' ],
    preset_names   => [ 'PRESETS', '' ],
    actions        => [ 'ACTIONS', '' ],
);
same_set([ keys %where ], [ keys %arrays ],
         "t/manpages.t knows every name array of src/config.c");

my $m5 = man_sections("$man/stripe-sync.conf.5");
for my $a (sort keys %where) {
    my ($sh, @ss) = @{ $where{$a} };
    my @documented = map { @{ tp_words(sub_lines($m5, $sh, $_)) } } @ss;
    my $in = join ', ', grep { $_ ne '' } @ss;
    same_set(\@documented, $arrays{$a} || [],
             "stripe-sync.conf(5) $sh" . ($in ne '' ? " ($in)" : '')
             . ": exactly config.c's $a");
}
same_set(sub_names($m5, 'SETTINGS'), [ 'Top level', 'stripe', 'provider', 'retry' ],
         'stripe-sync.conf(5) SETTINGS: one subsection per group');

# ========================================================= rendering ===

SKIP: {
    chomp(my $have_man = `command -v man 2>/dev/null`);
    skip 'man is not installed', 3 unless $have_man;
    for my $page (qw(stripe-sync.1 stripe-sync.conf.5 ngx_http_stripe_sync_module.8)) {
        my $out = `LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l $man/$page 2>&1 >/dev/null`;
        is($out, '', "$page renders without groff warnings");
    }
}

finish();
