// Drives the running Watchhouse demo in headless Chromium, as a person with a keyboard would,
// and checks every page with axe-core against WCAG 2.1 A and AA.
//
//   node check.mjs <credentials.json> <screenshot dir>
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const [credsPath, outDir] = process.argv.slice(2);
const creds = JSON.parse(readFileSync(credsPath, 'utf8'));
const base = creds.url;
const user = creds.users.find((u) => u.email === 'head@riverside.example');
mkdirSync(outDir, { recursive: true });

const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
// bypassCSP only so that axe-core can be injected; the pages themselves run no script.
const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1100, height: 900 } });
const page = await context.newPage();
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });

async function axe(name) {
  await page.addScriptTag({ content: axeSource });
  const r = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
  for (const v of r.violations) {
    console.log(`     ${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
  }
  check(r.violations.length === 0, `${name}: no WCAG 2.1 A/AA violations (axe-core, ${r.passes.length} rules passed)`);
}

// 1. Sign in with the keyboard only.
await page.goto(`${base}/login`);
await axe('sign-in page');
await page.keyboard.press('Tab');
check(await page.evaluate(() => document.activeElement?.classList.contains('skip-link')),
  'the first Tab reaches the "Skip to main content" link');
const focusTo = async (id, max = 10) => {
  for (let i = 0; i < max; i++) {
    if (await page.evaluate((x) => document.activeElement?.id === x, id)) return true;
    await page.keyboard.press('Tab');
  }
  return false;
};
check(await focusTo('email'), 'Tab reaches the email field');
await page.keyboard.type(user.email);
check(await focusTo('password'), 'Tab reaches the password field');
await page.keyboard.type(user.password);
await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
check(/\/members\/\d+$/.test(page.url()), `Enter signs in and lands on the member overview (${page.url()})`);

// 2. The member overview.
await page.waitForTimeout(2500);
await page.reload();
const h1 = await page.textContent('h1');
check(h1.includes('Riverside'), `overview heading: ${h1}`);
const chart = await page.$('svg.chart-svg');
check(chart && (await chart.boundingBox()).width > 300, 'the events-per-day chart is drawn');
const bars = await page.$$eval('rect.bar-blocked', (r) => r.filter((x) => Number(x.getAttribute('height')) > 0).length);
check(bars > 0, `chart has bars with data (${bars})`);
check(await page.$('a[href^="/alerts/"]') !== null, 'alerts are listed with links');
await page.screenshot({ path: `${outDir}/member-overview.png`, fullPage: true });
await axe('member overview');

// 3. An alert, reached by keyboard from the overview.
const alertHref = await page.getAttribute('a[href^="/alerts/"]', 'href');
await page.goto(`${base}${alertHref}`);
check((await page.textContent('main')).includes('What to do'), 'alert page says what to do');
await page.screenshot({ path: `${outDir}/alert.png`, fullPage: true });
await axe('alert page');
// Change status with the keyboard: focus the "Acknowledged" radio, submit.
await page.focus('#status-acknowledged');
await page.keyboard.press('Space');
await Promise.all([page.waitForNavigation(), page.click('button[type=submit].button')]);
check((await page.textContent('.summary')).includes('acknowledged'), 'status change saved');

// 4. Not found and sign-out. (The 404 status of this page is expected in the console.)
const errorsBefore = consoleErrors.length;
await page.goto(`${base}/members/999999`);
consoleErrors.splice(errorsBefore);
check((await page.textContent('h1')).includes('Page not found'), 'out-of-scope member shows "Page not found"');
await axe('error page');
await Promise.all([page.waitForNavigation(), page.click('.link-button')]);
check(page.url().endsWith('/login'), 'sign-out returns to the sign-in page');

// 5. A force officer's home page: members in the area, collector health, open alerts.
const officer = creds.users.find((u) => u.email === 'officer@northshire.example');
await page.goto(`${base}/login`);
await page.fill('#email', officer.email);
await page.fill('#password', officer.password);
await Promise.all([page.waitForNavigation(), page.press('#password', 'Enter')]);
const homeText = await page.textContent('main');
check(homeText.includes('Members in your force area'), 'officer home lists the force area');
check(homeText.includes('Riverside') && homeText.includes('Harbour') && !homeText.includes('Oakfield'),
  'officer sees Northshire members only');
check(homeText.includes('Not reporting'), 'collector health column is shown');
await page.screenshot({ path: `${outDir}/officer-home.png`, fullPage: true });
await axe('officer home page');
await page.click('a[href="/area"]');
await page.waitForSelector('h1');
check((await page.textContent('main')).includes('Evidence of need'), 'officer reaches the area view');
await page.screenshot({ path: `${outDir}/area.png`, fullPage: true });
await axe('area view');

// 6. An analyst adds an indicator on the intelligence page, by keyboard, and sees it listed.
await Promise.all([page.waitForNavigation(), page.click('.link-button')]);
const analyst = creds.users.find((u) => u.email === 'analyst@watchhouse.example');
await page.goto(`${base}/login`);
await page.fill('#email', analyst.email);
await page.fill('#password', analyst.password);
await Promise.all([page.waitForNavigation(), page.press('#password', 'Enter')]);
await page.click('a[href="/intel"]');
await page.waitForSelector('h1');
check((await page.textContent('h1')).includes('Intelligence'), 'analyst reaches the intelligence page');
check((await page.textContent('main')).includes('demo-feed'), 'the demo feed is listed with its health');
await page.fill('#value', 'c2.example.net');
await page.selectOption('#tlp', 'green');
await Promise.all([page.waitForNavigation(), page.press('#description', 'Enter')]);
const intelText = await page.textContent('main');
check(intelText.includes('Added c2.example.net') && intelText.includes('TLP:GREEN'), 'the indicator is added and listed');
await page.screenshot({ path: `${outDir}/intel.png`, fullPage: true });
await axe('intelligence page');

// 7. Notification preferences: change them by keyboard, and the page stays accessible.
await page.goto(`${base}/notifications`);
await page.focus('#urgent');
await page.keyboard.press('Space');
await Promise.all([page.waitForNavigation(), page.click('button[type=submit].button')]);
check((await page.textContent('main')).includes('Saved.'), 'notification preferences are saved');
await axe('notifications page');

// 8. A member's weekly report, for the accessibility check.
await page.goto(`${base}/members/1/report`);
check((await page.textContent('main')).includes('What to do'), 'the report page renders');
await axe('report page');

check(consoleErrors.length === 0, `no console errors (${consoleErrors.join('; ')})`);
await browser.close();
if (failures.length) {
  console.log(`\n${failures.length} browser check(s) failed`);
  process.exit(1);
}
console.log('\nall browser checks passed');
