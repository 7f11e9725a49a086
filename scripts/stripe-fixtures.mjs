#!/usr/bin/env node
// Copies the Stripe object fixtures the tests build events from out of stripe-mock's module (the
// version pinned in tools/versions.env), so that test payloads are Stripe's own objects.
//   node scripts/stripe-fixtures.mjs
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const pins = fs.readFileSync(path.join(root, 'tools/versions.env'), 'utf8');
const version = /^STRIPE_MOCK_VERSION=(\S+)/m.exec(pins)?.[1];
if (!version) throw new Error('STRIPE_MOCK_VERSION is not pinned in tools/versions.env');
const mod = `github.com/stripe/stripe-mock@v${version}`;
const dir = JSON.parse(execFileSync('go', ['mod', 'download', '-json', mod], { encoding: 'utf8', timeout: 300_000 })).Dir;
const fixtures = JSON.parse(fs.readFileSync(path.join(dir, 'embedded/openapi/fixtures3.json'), 'utf8')).resources;
const out = {
  _source: `Copied from stripe-mock v${version} (github.com/stripe/stripe-mock, embedded/openapi/fixtures3.json): Stripe's own object fixtures for API 2026-08-26.dahlia. Regenerate with: node scripts/stripe-fixtures.mjs`,
};
for (const name of ['event', 'subscription', 'invoice', 'checkout.session', 'payment_intent']) out[name] = fixtures[name];
fs.writeFileSync(path.join(root, 'test/fixtures/stripe/objects.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log(`wrote test/fixtures/stripe/objects.json from ${mod}`);
