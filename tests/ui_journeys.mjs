// The web UI's journeys in Debian's chromium (playwright-core), run by
// tests/ui_browser.py, which makes the catalog and passes it in UI_SETUP.
// Each check is printed as a line "CHECK {ok, what, diag}".  Every page
// seen is checked with axe-core (no serious or critical violation), for
// errors in the console (a CSP violation is one) and for its CSP header,
// and is photographed at 375 px and 1280 px wide.

import { createRequire } from 'module';
import fs from 'fs';
import path from 'path';

const S = JSON.parse(process.env.UI_SETUP);
const require = createRequire(path.join(S.modules, '/'));
const { chromium } = require('playwright-core');
const { AxeBuilder } = require('@axe-core/playwright');

const P = S.products;
let failed = 0;

function check(ok, what, diag) {
  if (!ok) failed += 1;
  const line = { ok: !!ok, what };
  if (!ok && diag !== undefined) line.diag = String(diag).slice(0, 2000);
  process.stdout.write(`CHECK ${JSON.stringify(line)}\n`);
  return ok;
}

fs.mkdirSync(S.shots, { recursive: true });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });

// A browser profile of its own (cookies, storage), with what its pages
// log kept for the checks.
async function person(name) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  const who = { name, context, page, errors };
  people.push(who);
  return who;
}
const people = [];

const seen = new Set();

// Look at the page on view: axe, console, and two screenshots.
async function look(who, label) {
  const { page } = who;
  // A page that follows its order live never goes idle: settling is given
  // 3 s, not the page's whole timeout.
  await page.waitForLoadState('networkidle', { timeout: 3000 }).catch(() => {});
  if (!seen.has(label)) {
    seen.add(label);
    const axe = await new AxeBuilder({ page }).analyze();
    const bad = axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    check(bad.length === 0, `${label}: no serious or critical axe violation`,
      bad.map((v) => `${v.impact} ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`).join('\n'));
    const text = await page.locator('body').innerText();
    const junk = text.match(/\b(null|undefined|NaN)\b|\[object Object\]/);
    check(!junk, `${label}: no "null", "undefined", "NaN" or "[object Object]" on the page`, junk && junk[0]);
    // Asked by the page itself: the browser's own connections.
    const csp = await page.evaluate(async () =>
      (await fetch(location.href, { cache: 'no-store' })).headers.get('content-security-policy') || '');
    check(/script-src 'self'/.test(csp) && !/unsafe-inline|unsafe-eval/.test(csp),
      `${label}: its path is served with the strict CSP`, csp);
    const stored = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }]));
    check(!/eyJ/.test(stored), `${label}: no token in localStorage or sessionStorage`, stored);
    for (const [w, h] of [[1280, 900], [375, 740]]) {
      await page.setViewportSize({ width: w, height: h });
      await page.screenshot({ path: path.join(S.shots, `${label.replace(/[^a-z0-9]+/gi, '-')}-${w}.png`), fullPage: true });
    }
    if (label === 'home') {
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      check(wide <= 375, 'home at 375 px: nothing wider than the screen', wide);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  }
  const errs = who.errors.splice(0);
  check(errs.length === 0, `${label}: no error in the console (CSP included)`, errs.join('\n'));
}

async function step(what, fn) {
  const t0 = Date.now();
  try {
    await fn();
    // Where the run's minutes go, in the test's log.
    console.log(`step took ${Date.now() - t0} ms: ${what}`);
  } catch (err) {
    // Where each person was, and their last console errors: what a
    // failed step needs to be told apart.
    const where = people.map((p) => `${p.name} at ${p.page.url()}: ${p.errors.slice(-3).join(' | ')}`);
    check(false, `${what}: ran to its end`, `${err.stack || err}\n${where.join('\n')}`);
    await Promise.all(people.map((p) => p.page.screenshot({
      path: path.join(S.shots, `FAILED-${p.name}.png`), fullPage: true }).catch(() => {})));
  }
}

const url = (p) => S.base + p;
const main = (who) => who.page.locator('main');

async function logIn(who, email, password) {
  await who.page.goto(url('/login'));
  await who.page.getByLabel('Email').fill(email);
  await who.page.getByLabel('Password').fill(password);
  await who.page.getByRole('button', { name: 'Log in' }).click();
  await who.page.waitForURL((u) => !u.pathname.startsWith('/login'));
}

async function addToCart(who, product, quantity = 1) {
  await who.page.goto(url(`/products/${product.id}`));
  await main(who).getByLabel('Quantity').fill(String(quantity));
  await who.page.getByRole('button', { name: 'Add to cart' }).click();
  await who.page.locator('#toast').filter({ hasText: 'in your cart' }).waitFor();
}

async function fillAddress(page) {
  await page.getByLabel('Full name').fill('Ana Buyer');
  await page.getByLabel('Address', { exact: true }).fill('1 Main St');
  await page.getByLabel('City').fill('Springfield');
  await page.getByLabel('Phone').fill('+1 555 0100');
}

// How many elements loc matches once it holds n, or after ms: a list may
// be drawn again (a filter's answer) between its first item and the count.
async function countOf(loc, n, ms = 10000) {
  const end = Date.now() + ms;
  let c = await loc.count();
  while (c !== n && Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    c = await loc.count();
  }
  return c;
}

// The names on the cards once they are want's, or whatever they are
// after ms: a navigation draws the page again, so a read right after it
// may see the page before, or the new list before its answer fills it.
async function namesOf(cards, want, ms = 10000) {
  const end = Date.now() + ms;
  let names = await cards.locator('h3').allTextContents();
  while (names.join('\n') !== want.join('\n') && Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    names = await cards.locator('h3').allTextContents();
  }
  return names;
}

async function statusWord(page) {
  return (await page.locator('#order-status .badge').textContent()).trim();
}

async function waitStatus(page, word, seconds = 90) {
  await page.locator('#order-status .badge').filter({ hasText: new RegExp(`^${word}$`) })
    .waitFor({ timeout: seconds * 1000 });
}

// The test provider's controls (tests/oidcprovider.py).
async function provider(body) {
  const r = await fetch(`${S.provider}/_control`, { method: 'POST', body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`the provider's control: ${r.status}`);
}

// --- a shop on a real gateway -------------------------------------------------
// ui_browser.py restarted the programs with payment_provider = http and
// runs this step alone: no test card may be offered or filled in.

if (S.live) {
  const buyer = await person('live buyer');
  const noTestCards = async (card, where) => {
    await card.waitFor();
    const value = await card.inputValue();
    const list = await card.getAttribute('list');
    const text = await main(buyer).innerText();
    check(value === '' && list === null && await buyer.page.locator('datalist').count() === 0 && !/tok_/.test(text),
      `${where} on a real gateway: the card field is empty and offers no test card`,
      JSON.stringify({ value, list, text: text.slice(0, 400) }));
  };
  await step('a shop on a real gateway offers no test card', async () => {
    const { page } = buyer;
    await logIn(buyer, S.live.email, S.password);
    await page.goto(url('/checkout'));
    await noTestCards(page.getByLabel('Card'), 'checkout');
    await look(buyer, 'checkout on a real gateway');
    await page.goto(url(`/orders/${S.live.declined}`));
    await page.getByRole('heading', { name: 'Pay with another card' }).waitFor();
    await noTestCards(page.getByLabel('Card', { exact: true }), 'a declined order');
    await look(buyer, 'declined order on a real gateway');
  });
  await browser.close();
  process.exit(failed ? 1 : 0);
}

// --- anonymous ------------------------------------------------------------------

const anon = await person('anonymous');
await step('anonymous pages', async () => {
  const res = await anon.page.goto(url('/'));
  const csp = res.headers()['content-security-policy'] || '';
  check(/script-src 'self'/.test(csp) && !/unsafe-inline|unsafe-eval/.test(csp),
    'the UI is served with a strict CSP', csp);
  // The first view of a browser that never came: every response's body.
  const fresh = await browser.newContext({ ignoreHTTPSErrors: true });
  const first = await fresh.newPage();
  const sizes = [];
  first.on('response', (r) => sizes.push(r.body().then((b) => b.length, () => 0)));
  await first.goto(url('/'));
  await first.locator('main h2').first().waitFor();
  await first.waitForLoadState('networkidle');
  const total = (await Promise.all(sizes)).reduce((a, b) => a + b, 0);
  check(total < 100 * 1024, `the home page's first view transfers ${total} bytes, under 100 KB`, total);
  await fresh.close();
  await main(anon).getByRole('heading', { name: 'Categories' }).waitFor();
  await look(anon, 'home');
  check(await main(anon).getByRole('link', { name: S.category.name }).count() === 1,
    'home: the category tree holds the new category');
  await anon.page.goto(url('/categories/999999999999'));
  await main(anon).getByRole('heading', { name: 'Page not found' }).waitFor();
  check(await main(anon).getByRole('heading', { name: 'Page not found' }).count() === 1,
    'a category that does not exist: "Page not found", not every product');

  for (const [p, label] of [['/login', 'login'], ['/register', 'register'], ['/forgot-password', 'forgot password']]) {
    await anon.page.goto(url(p));
    await main(anon).locator('h1').waitFor();
    await look(anon, label);
  }
  await anon.page.goto(url('/no/such/page'));
  check(await main(anon).locator('h1').textContent() === 'Page not found', 'an unknown path: the not-found page');
  const js = await anon.page.request.get(url('/js/missing.js'));
  check(js.status() === 404, 'a missing script is a 404, not index.html', js.status());
  await anon.page.goto(url('/cart'));
  await anon.page.waitForURL(/\/login\?next=/);
  check(true, 'the cart, anonymous: sent to log in');
  anon.errors.splice(0);
});

// --- the shopper ----------------------------------------------------------------

// --- signing in with a provider ----------------------------------------------------

await step('a new shopper signs in with a provider, links another, and is refused once', async () => {
  const who = await person('social');
  const { page } = who;
  const email = `ui.social.${S.run}@example.com`;
  await provider({ user: { sub: `ui-${S.run}`, email, email_verified: true, name: 'Sam Social' }, deny: false, fault: '' });
  await page.goto(url('/login?next=/account'));
  await look(who, 'login with providers');
  await page.getByRole('link', { name: 'Log in with Test ID' }).click();
  await page.waitForURL((u) => u.pathname === '/account');
  await main(who).getByRole('heading', { name: 'Sign-in providers' }).waitFor();
  const text = await main(who).innerText();
  check(text.includes(email) && /Linked/.test(await main(who).locator('tr[data-provider="testid"]').innerText()),
    'signed in with Test ID: back on the account page, a new account with it linked', text.slice(0, 400));
  await provider({ hub_user: { id: parseInt(S.run.slice(0, 6), 16), login: `ui${S.run}` },
    hub_emails: [{ email: `ui.hub.${S.run}@example.com`, primary: true, verified: true }] });
  await main(who).getByRole('button', { name: 'Link TestHub' }).click();
  await page.waitForURL((u) => u.pathname === '/account');
  await main(who).locator('tr[data-provider="testhub"]').filter({ hasText: 'Linked' }).waitFor();
  check(true, 'Link TestHub goes to the provider and back: it is linked');
  await look(who, 'account with providers');
  who.page.once('dialog', (d) => d.accept());
  await main(who).getByRole('button', { name: 'Unlink TestHub' }).click();
  await main(who).getByRole('button', { name: 'Link TestHub' }).waitFor();
  check(true, 'Unlink TestHub: it is unlinked');
  await page.getByRole('button', { name: 'Log out', exact: true }).click();
  await page.getByRole('link', { name: 'Log in' }).waitFor();
  await provider({ deny: true });
  await page.goto(url('/login'));
  await page.getByRole('link', { name: 'Log in with Test ID' }).click();
  await page.waitForURL((u) => u.searchParams.get('sign_in_error') === 'provider_denied');
  const alert = await main(who).getByRole('alert').textContent();
  check(/cancelled at the provider/.test(alert), 'a sign-in refused at the provider: the login page says so', alert);
  await provider({ deny: false });
  await look(who, 'login refused by the provider');
});

const shopper = await person('shopper');
const email = `ui.shopper.${S.run}@example.com`;
let paidOrder = null;
await step('a forgotten password, through the mailed links', async () => {
  const who = await person('forgetful');
  const { page } = who;
  await page.goto(url('/login'));
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await page.getByLabel('Email').fill(S.resetter);
  await page.getByRole('button', { name: 'Mail me a link' }).click();
  await main(who).getByRole('status').filter({ hasText: 'is on its way' }).waitFor();
  check(true, 'forgot password: the form says a mail is on its way');
  await page.goto(url(`/verify-email#token=${S.links.verify}`));
  await main(who).getByText('your email address is confirmed').waitFor();
  check(page.url() === url('/verify-email'), 'the token is dropped from the address bar', page.url());
  check(true, 'the verification link confirms the address');
  await look(who, 'verify email');
  await page.goto(url('/'));
  await page.goto(url(`/verify-email#token=${S.links.verify}`));
  await main(who).getByText('This link is used or expired.').waitFor();
  check(true, 'the same link again: used');
  who.errors.splice(0); // the browser logs that 422 itself
  await page.goto(url(`/reset-password#token=${S.links.reset}`));
  await main(who).locator('h1').waitFor();
  await look(who, 'reset password');
  await page.getByLabel('New password').fill('a brand new password');
  await page.getByRole('button', { name: 'Set password' }).click();
  await page.waitForURL(/\/login$/);
  await logIn(who, S.resetter, 'a brand new password');
  await page.getByRole('button', { name: 'Log out', exact: true }).waitFor();
  check(true, 'the reset link sets a new password, and it logs in');
  await who.context.close();
});

await step('a new shopper registers, searches, filters, buys and follows the order', async () => {
  const { page } = shopper;
  await page.goto(url('/register'));
  await page.getByLabel('Name').fill('Ana');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(S.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('link', { name: 'Orders' }).waitFor();
  check(true, 'registered and logged in: the header offers Orders');

  await page.getByRole('search').getByLabel('Search').fill(S.word);
  await page.getByRole('search').getByRole('button').click();
  await page.waitForURL(/\/search\?q=/);
  const cards = main(shopper).locator('.cards > li');
  await cards.first().waitFor();
  const found = await countOf(cards, 4);
  check(found === 4, 'search: the four products of the run', found);
  await look(shopper, 'search');

  await main(shopper).getByLabel('In stock only').check();
  await main(shopper).getByLabel('Category').selectOption(S.category.id);
  await main(shopper).getByLabel('Attribute', { exact: true }).fill('color');
  await main(shopper).getByLabel('Attribute value').fill('green');
  await main(shopper).getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForURL(/attr_value=green/);
  const names = await namesOf(cards, [P.tent.name]);
  check(names.length === 1 && names[0] === P.tent.name, 'filters (stock, category, attribute): the tent alone', names);
  await main(shopper).getByLabel('Attribute', { exact: true }).fill('');
  await main(shopper).getByLabel('Attribute value').fill('');
  await main(shopper).getByLabel('Highest price').fill('30');
  await main(shopper).getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForURL(/max_price=30/);
  const cheap = await namesOf(cards, [P.lamp.name]);
  check(cheap.length === 1 && cheap[0] === P.lamp.name, 'price range up to 30: the lamp alone', cheap);
  await page.goto(url(`/search?q=${S.word}zzqq`));
  await main(shopper).locator('#result-count').filter({ hasText: 'No products match.' }).waitFor();
  check(true, 'a search that matches nothing says so');

  await page.goto(url(`/search?q=${S.word}`));
  await cards.first().waitFor();
  await main(shopper).getByRole('link', { name: P.tent.name }).click();
  await page.waitForURL(`**/products/${P.tent.id}`);
  await main(shopper).getByRole('heading', { name: P.tent.name }).waitFor();
  const price = await main(shopper).locator('.price').first().textContent();
  check(price === '$199.99', 'the product page shows the price in its currency', price);
  check(await main(shopper).getByText('green').count() > 0, 'the product page shows its attributes');
  await look(shopper, 'product');
  await main(shopper).getByLabel('Quantity').fill('2');
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await page.locator('#toast').filter({ hasText: 'in your cart' }).waitFor();
  await addToCart(shopper, P.lamp, 1);
  await page.getByRole('link', { name: /^Cart/ }).click();
  await page.waitForURL('**/cart');
  await main(shopper).locator('#cart-subtotal').waitFor();
  const sub = await main(shopper).locator('#cart-subtotal').textContent();
  check(sub === '$424.48', 'the cart: 2 tents and a lamp, $424.48', sub);
  await look(shopper, 'cart');
  await main(shopper).getByLabel(`Quantity of ${P.lamp.name}`).fill('2');
  await main(shopper).locator(`tr[data-product="${P.lamp.id}"]`).getByRole('button', { name: 'Update' }).click();
  await main(shopper).locator('#cart-subtotal').filter({ hasText: '$448.98' }).waitFor();
  check(true, 'a quantity changed in the cart: the subtotal follows');
  const focused = await page.evaluate(() => {
    const a = document.activeElement;
    return `${a.closest('tr')?.dataset.product}:${a.textContent}`;
  });
  check(focused === `${P.lamp.id}:Update`, 'the cart drawn again: the focus stays on that line\'s Update', focused);

  await main(shopper).getByRole('link', { name: 'Checkout' }).click();
  await page.waitForURL('**/checkout');
  await look(shopper, 'checkout');
  await fillAddress(page);
  const card = page.getByLabel('Card');
  const offered = await page.locator('#test-cards option').evaluateAll((os) => os.map((o) => o.value));
  check(await card.inputValue() === 'tok_visa' && offered.join() === 'tok_visa,tok_chargeDeclined,tok_flaky',
    'checkout on the simulated provider: the test cards are offered, tok_visa filled in', offered.join());
  await card.fill('tok_visa');
  const navigations = [];
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
  await page.getByRole('button', { name: 'Place order' }).click();
  await page.waitForURL(/\/orders\/[0-9]+$/);
  paidOrder = page.url().split('/').pop();
  const word = await statusWord(page);
  check(['pending', 'paid', 'completed'].includes(word), `the new order's page shows its status as a word (${word})`, word);
  await page.evaluate(() => { window.agoraNoReload = 1; });
  await waitStatus(page, 'completed');
  // The badge is the order's status, the history its events: the page
  // catches the events up before it draws a status they do not hold.
  const history = await main(shopper).locator('#order-history').innerText();
  check(/pending[\s\S]*paid[\s\S]*completed/.test(history),
    'the order became paid, then completed, on the page as it stood', history);
  check(await page.evaluate(() => window.agoraNoReload) === 1, 'no reload while the status changed',
    navigations.join('\n'));
  await look(shopper, 'order');
  const download = page.waitForEvent('download');
  await main(shopper).getByRole('button', { name: 'Download invoice (PDF)' }).click();
  const file = await (await download).path();
  const head = fs.readFileSync(file).subarray(0, 5).toString();
  check(head === '%PDF-', 'the invoice downloads as a PDF', head);
  await page.getByRole('link', { name: 'Orders' }).click();
  await main(shopper).getByRole('link', { name: `Order ${paidOrder}` }).waitFor();
  await look(shopper, 'orders');
});

await step('a declined card shows the failure; another card pays', async () => {
  const { page } = shopper;
  await addToCart(shopper, P.lamp, 1);
  await page.goto(url('/checkout'));
  await fillAddress(page);
  await page.getByLabel('Card').fill('tok_chargeDeclined');
  await page.getByRole('button', { name: 'Place order' }).click();
  await page.waitForURL(/\/orders\/[0-9]+$/);
  await waitStatus(page, 'payment failed');
  const alert = await main(shopper).getByRole('alert').first().textContent();
  check(/card declined/.test(alert), 'the declined payment is shown', alert);
  await look(shopper, 'order declined');
  await page.getByLabel('Card', { exact: true }).fill('tok_visa');
  await page.getByRole('button', { name: 'Place order again' }).click();
  await page.waitForURL((u) => /\/orders\/[0-9]+$/.test(u.pathname) && !page.url().endsWith(`/${paidOrder}`));
  await waitStatus(page, 'completed');
  check(true, 'the second payment succeeded: the new order is completed');
});

await step('insufficient stock is shown on the line it concerns', async () => {
  const { page } = shopper;
  await addToCart(shopper, P.lamp, 1);
  await page.goto(url(`/products/${P.kettle.id}`));
  await main(shopper).getByRole('button', { name: 'Add to cart' }).waitFor();
  // The form allows one; the cart is asked for three directly.
  await page.evaluate(async (id) => {
    const { api } = await import('/js/api.js');
    await api('PUT', `/cart/items/${id}`, { quantity: 3 });
  }, P.kettle.id);
  await page.goto(url('/checkout'));
  await fillAddress(page);
  await page.getByRole('button', { name: 'Place order' }).click();
  const row = main(shopper).locator(`tr[data-product="${P.kettle.id}"]`);
  await row.getByRole('alert').waitFor();
  check(/you asked for 3, 1 available/.test(await row.innerText()), 'the kettle\'s line says 3 asked, 1 available',
    await row.innerText());
  const other = main(shopper).locator(`tr[data-product="${P.lamp.id}"]`);
  check(await other.getByRole('alert').count() === 0, 'the lamp\'s line says nothing');
  check(/\/checkout$/.test(page.url()), 'the shopper stays at checkout');
  // The browser logs the 409 itself; it is the answer this step wants.
  const logged = shopper.errors.splice(0);
  check(logged.length === 1 && /409/.test(logged[0]), 'the console holds the 409 alone', logged.join('\n'));
  await look(shopper, 'checkout short');
  await page.goto(url('/cart'));
  for (const p of [P.kettle, P.lamp]) {
    await main(shopper).getByRole('button', { name: `Remove ${p.name}` }).click();
    await main(shopper).getByRole('button', { name: `Remove ${p.name}` }).waitFor({ state: 'detached' });
  }
  check(await main(shopper).getByText('Your cart is empty.').count() === 1, 'lines removed: the cart is empty');
  const at = await page.evaluate(() => document.activeElement.outerHTML);
  check(/^<h1[^>]*>Your cart</.test(at), 'its line gone, the focus goes to the heading, not the page', at);
});

await step('a reload keeps the session; the account page works', async () => {
  const { page } = shopper;
  await page.goto(url('/account'));
  await page.reload();
  await main(shopper).getByRole('heading', { name: 'Your account' }).waitFor();
  check(await page.getByRole('button', { name: 'Log out', exact: true }).count() === 1, 'after a reload the shopper is still logged in');
  const sessions = main(shopper).getByRole('region', { name: 'Where you are signed in' });
  check(await sessions.getByText('This device').count() === 1,
    'the account page lists where the shopper is signed in, this device marked');
  // Two more devices: signing one out keeps the focus in the list.
  const other = await browser.newContext({ ignoreHTTPSErrors: true });
  for (let i = 0; i < 2; i++) {
    const r = await other.request.post(url('/api/v1/auth/login'), { data: { email, password: S.password } });
    check(r.status() === 200, `another device logs in (${i + 1})`, `${r.status()} ${await r.text()}`);
  }
  await other.close();
  await page.reload();
  const out = sessions.getByRole('button', { name: /^Sign out / });
  await countOf(out, 2);
  await out.first().click();
  await page.getByText('That device is signed out.').first().waitFor();
  const at = await page.evaluate(() => document.activeElement.getAttribute('aria-label') || document.activeElement.tagName);
  check(await out.count() === 1 && /^Sign out /.test(at),
    'a device signed out: its line goes, the focus to the next device\'s button', at);
  check(await main(shopper).getByText('is not confirmed yet').count() === 1,
    'a new account: the page says its email is not confirmed');
  await main(shopper).getByRole('button', { name: 'Mail me a new link' }).click();
  await page.getByText('A new link is on its way.').first().waitFor();
  check(true, 'and mails a new link on request');
  const kept = (await shopper.context.cookies()).filter((c) => c.name === 'agora_refresh');
  check(kept.length === 2 && kept.every((c) => c.httpOnly && c.secure && c.sameSite === 'Strict')
    && kept.map((c) => c.path).sort().join(' ') === '/api/v1/auth/logout /api/v1/auth/refresh',
  'the browser keeps the refresh cookie HttpOnly, Secure, SameSite=Strict, on the two auth paths',
  JSON.stringify(kept));
  const jsCookie = await page.evaluate(() => document.cookie);
  check(!/agora_refresh/.test(jsCookie), 'the refresh token is not readable by scripts', jsCookie);
  await look(shopper, 'account');
  await page.goto(url('/notifications'));
  await main(shopper).locator('table').waitFor();
  await look(shopper, 'notifications');
});

// --- the staff ------------------------------------------------------------------

const admin = await person('admin');
const newName = `Canvas Chair ${S.word}`;
await step('an admin creates a product; a shopper finds it', async () => {
  const { page } = admin;
  await logIn(admin, S.admin_email, S.password);
  await page.goto(url('/admin'));
  await main(admin).locator('h1').waitFor();
  await look(admin, 'admin dashboard');
  await page.goto(url('/admin/products/new'));
  await main(admin).getByLabel('SKU').fill(`UI-CHAIR-${S.run}`);
  await main(admin).getByLabel('Name').fill(newName);
  await main(admin).getByLabel('Price').fill('49.50');
  await main(admin).getByLabel('Stock').fill('7');
  await look(admin, 'admin new product');
  await main(admin).getByRole('button', { name: /Create product|Save/ }).click();
  await page.waitForURL(/\/admin\/products\/[0-9]+$/);
  check(true, 'the product is created');
  // Someone else sets the stock while this page shows 7: the count typed
  // here must not overwrite theirs unseen.
  const pid = page.url().split('/').pop();
  await page.evaluate(async (id) => {
    const { api } = await import('/js/api.js');
    await api('PUT', `/inventory/${id}`, { on_hand: 9 });
  }, pid);
  await main(admin).getByRole('spinbutton', { name: 'On hand' }).fill('12');
  await main(admin).getByRole('button', { name: 'Save stock' }).click();
  await main(admin).locator('.field-error').filter({ hasText: 'On hand changed meanwhile to 9' }).waitFor();
  const logged = admin.errors.splice(0); // the browser logs the 409 itself
  check(logged.length === 1 && /409/.test(logged[0]), 'the console holds that 409 alone', logged.join('\n'));
  await main(admin).getByRole('button', { name: 'Save stock' }).click();
  await main(admin).locator('dd').filter({ hasText: /^12$/ }).first().waitFor();
  check(true, 'a stock count made against an old figure is refused, shown, and saved on the second try');
  const { page: sp } = shopper;
  await sp.goto(url(`/search?q=${encodeURIComponent(newName)}`));
  await main(shopper).getByRole('link', { name: newName }).waitFor();
  check(true, 'the shopper finds the new product by search');
});

await step('an admin ships the order; the shopper sees it live', async () => {
  const { page } = admin;
  const { page: sp } = shopper;
  await sp.goto(url(`/orders/${paidOrder}`));
  await waitStatus(sp, 'completed');
  await sp.evaluate(() => { window.agoraNoReload = 1; });
  await page.goto(url('/admin/orders?status=completed'));
  await main(admin).getByRole('link', { name: new RegExp(`\\b${paidOrder}\\b`) }).first().waitFor();
  await look(admin, 'admin orders');
  await page.goto(url(`/admin/orders/${paidOrder}`));
  await main(admin).getByLabel('Tracking number').fill(`1Z${S.run}`);
  await look(admin, 'admin order');
  // A keyboard user on the invoice button keeps their place when the
  // page draws the order again.
  await main(shopper).getByRole('button', { name: 'Download invoice (PDF)' }).focus();
  await main(admin).getByRole('button', { name: 'Ship order' }).click();
  await waitStatus(sp, 'shipped', 40);
  check(await sp.evaluate(() => window.agoraNoReload) === 1, 'the shopper\'s page showed shipped without a reload');
  const at = await sp.evaluate(() => document.activeElement.textContent);
  check(at === 'Download invoice (PDF)', 'drawn again, the page keeps the focus on the invoice button', at);
  check((await main(shopper).innerText()).includes(`1Z${S.run}`), 'and the tracking number');
});

await step('the other admin pages', async () => {
  const { page } = admin;
  for (const [p, label] of [['/admin/products', 'admin products'], ['/admin/categories', 'admin categories'],
    ['/admin/users', 'admin users'], ['/admin/outbox', 'admin outbox']]) {
    await page.goto(url(p));
    await main(admin).locator('h1').waitFor();
    await main(admin).locator('table, ul.tree').first().waitFor();
    await look(admin, label);
  }
});

// --- the intruder ---------------------------------------------------------------

await step('a customer cannot open the admin pages, and the API refuses', async () => {
  const { page } = shopper;
  await page.goto(url('/admin/orders'));
  await main(shopper).locator('h1').waitFor();
  check(await main(shopper).locator('h1').textContent() === 'Not allowed', 'the UI refuses /admin/orders to a customer');
  const answers = await page.evaluate(async () => {
    const { api } = await import('/js/api.js');
    const out = [];
    for (const [m, p, b] of [['GET', '/users'], ['GET', '/outbox'], ['POST', '/products', { sku: 'X', name: 'X', price_cents: 1 }]]) {
      try {
        await api(m, p, b);
        out.push('200');
      } catch (err) {
        out.push(`${err.status} ${err.code}`);
      }
    }
    return out;
  });
  check(answers.every((a) => a === '403 forbidden'), 'the API answers the customer\'s admin calls with 403', answers);
  shopper.errors.splice(0); // the 403s above are logged by the browser
});

await step('logout ends the session', async () => {
  const { page } = shopper;
  await page.goto(url('/'));
  await page.getByRole('button', { name: 'Log out', exact: true }).click();
  await page.getByRole('link', { name: 'Log in' }).waitFor();
  await page.reload();
  await page.getByRole('link', { name: 'Log in' }).waitFor();
  check(await page.getByRole('button', { name: 'Log out', exact: true }).count() === 0, 'after logout and a reload: logged out');
  const left = (await shopper.context.cookies()).filter((c) => c.name === 'agora_refresh');
  check(left.length === 0, 'the browser holds no refresh cookie any more', JSON.stringify(left));
  const r = await page.request.post(url('/api/v1/auth/refresh'), { data: {} });
  check([401, 422].includes(r.status()), 'and a refresh from it is refused', r.status());
});

await browser.close();
process.exit(failed ? 1 : 0);
