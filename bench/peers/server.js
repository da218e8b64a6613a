// bench/peers/server.js - the Stripe webhook handler users would write in
// Node.js instead of the nginx module: bench/run's comparison point, not part
// of the product.
//
// Express + the official `stripe` package (stripe.webhooks.constructEvent on
// the raw body) + the `redis` package (v4), doing what the module does with
// each event: verify, normalize to an action record, then ONE Redis script
// that dedupes the event id (and the fact), remembers the customer and
// pushes the record. The script is the module's own (src/enqueue_script.h,
// extracted by bench/run into SCRIPT_FILE), with the same keys and
// arguments, so Redis does the same work for both. The node cluster module
// runs WORKERS processes (one per core, as nginx runs one worker per core).
//
// Environment: PORT, REDIS_SOCKET (unix socket) or REDIS_URL, SECRET,
// SCRIPT_FILE, PREFIX (stripe_sync), TOLERANCE (s, 300), TTL (s, 2592000),
// WORKERS (2).

'use strict';

const cluster = require('node:cluster');
const fs = require('node:fs');

const WORKERS = Number(process.env.WORKERS || 2);

if (cluster.isPrimary) {
    let ready = 0;
    for (let i = 0; i < WORKERS; i++) {
        cluster.fork().on('message', (m) => {
            if (m === 'ready' && ++ready === WORKERS) {
                console.log(`peer: listening on ${process.env.PORT}`);
            }
        });
    }
    cluster.on('exit', (w, code, signal) => {
        if (!process.exitCode && signal !== 'SIGTERM') {
            console.error(`peer: worker ${w.process.pid} died (${signal || code})`);
            process.exitCode = 1;
        }
    });
    for (const sig of ['SIGTERM', 'SIGINT']) {
        process.on(sig, () => {
            for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
        });
    }
    return;
}

const express = require('express');
const Stripe = require('stripe');
const { createClient } = require('redis');

const stripe = new Stripe('sk_test_unused_by_constructEvent');
const secret = process.env.SECRET;
const tolerance = Number(process.env.TOLERANCE || 300);
const ttl = String(process.env.TTL || 2592000);
const P = `{${process.env.PREFIX || 'stripe_sync'}}`;
const script = fs.readFileSync(process.env.SCRIPT_FILE, 'utf8');

const redis = createClient(process.env.REDIS_SOCKET
    ? { socket: { path: process.env.REDIS_SOCKET } }
    : { url: process.env.REDIS_URL });
redis.on('error', (e) => console.error('peer: redis:', e.message));

// Effective once per fact (the module's list), keyed like the module.
const ONCE = new Set(['purchase', 'renewal', 'payment_recovered', 'invoice_paid',
    'subscription_started', 'subscription_cancelled']);

function invoiceAction(type, inv) {
    if (type === 'invoice.payment_failed') return 'payment_failed';
    if (type !== 'invoice.paid' && type !== 'invoice.payment_succeeded') return null;
    if ((inv.attempt_count || 0) > 1) return 'payment_recovered';
    if (inv.billing_reason === 'subscription_create') return 'purchase';
    if (inv.billing_reason === 'subscription_cycle') return 'renewal';
    return 'invoice_paid';
}

// The record the consumer needs, for invoice events (what this bench sends).
function normalize(event) {
    const inv = event.data.object;
    const action = event.type.startsWith('invoice.') ? invoiceAction(event.type, inv) : null;
    if (action === null) return null;
    const r = {
        v: 1, id: event.id, type: event.type, action, created: event.created,
        livemode: event.livemode, api_version: event.api_version,
        object: { type: 'invoice', id: inv.id },
    };
    if (inv.customer) {
        r.customer = { id: inv.customer };
        if (inv.customer_email) r.customer.email = inv.customer_email;
        if (inv.customer_name) r.customer.name = inv.customer_name;
    }
    r.amount = action === 'payment_failed' ? inv.amount_due : inv.amount_paid;
    r.currency = inv.currency;
    r.items = ((inv.lines && inv.lines.data) || []).slice(0, 100).map((l) => {
        const pd = (l.pricing && l.pricing.price_details) || {};
        return { price: pd.price, product: pd.product, quantity: l.quantity,
                 amount: l.amount, description: l.description };
    });
    const sub = inv.parent && inv.parent.subscription_details
        && inv.parent.subscription_details.subscription;
    if (sub) r.subscription = sub;
    r.invoice = inv.id;
    r.attempt_count = inv.attempt_count;
    r.billing_reason = inv.billing_reason;
    r.status = inv.status;
    r.metadata = inv.metadata || {};
    if (r.customer && !r.customer.email) r.enrich = ['email'];
    return r;
}

let sha;

async function enqueue(keys, args) {
    try {
        return await redis.evalSha(sha, { keys, arguments: args });
    } catch (e) {
        if (!String(e.message).startsWith('NOSCRIPT')) throw e;
        return redis.eval(script, { keys, arguments: args });
    }
}

const app = express();
app.disable('x-powered-by');

app.post('/stripe/webhook', express.raw({ type: () => true, limit: '1mb' }),
    async (req, res) => {
        let event;
        try {
            event = stripe.webhooks.constructEvent(req.body,
                req.headers['stripe-signature'], secret, tolerance);
        } catch (e) {
            return res.status(400).json({ error: e.message });
        }
        const record = normalize(event);
        if (record === null) {
            return res.json({ received: true, ignored: 'event type not handled' });
        }
        // the script's layout (src/enqueue_script.h): the shared keys,
        // then the event's own; a ttl, then the event's five arguments
        const keys = [`${P}:queue`, `${P}:customers`, `${P}:stats`,
            `${P}:seen:${event.id}`];
        const once = ONCE.has(record.action);
        if (once) {
            keys.push(`${P}:once:${record.action}:${record.object.id}`);
        }
        const c = record.customer;
        const order = c && (c.id || c.email);
        if (order) {
            keys.push(`${P}:order:${order}`);
        }
        const customer = c && c.email
            ? JSON.stringify({ email: c.email, name: c.name }) : '';
        try {
            const r = await enqueue(keys, [ttl, (once ? '1' : '0')
                + (order ? '1' : '0'), JSON.stringify(record),
                customer ? c.id : '', customer, event.id]);
            res.json(r[0] === 1 ? { received: true }
                : { received: true, duplicate: true });
        } catch (e) {
            res.status(503).set('Retry-After', '5').json({ error: 'Redis: ' + e.message });
        }
    });

(async () => {
    await redis.connect();
    sha = await redis.scriptLoad(script);
    app.listen(Number(process.env.PORT), '127.0.0.1', () => process.send('ready'));
})().catch((e) => {
    console.error('peer:', e.message);
    process.exit(1);
});
