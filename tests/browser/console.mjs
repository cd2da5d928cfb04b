// console.mjs — the dev console in a real browser: Debian's Chromium, headless,
// driven by Playwright (playwright-core from npm; no browser download).
// Run by tests/integration/test_browser.py, which starts the daemon.
//
//   node console.mjs ECHO_URL BRIEF_URL SCREENSHOT
//
// ECHO_URL is a devconsole route with the echo handler; BRIEF_URL one whose
// connections reach max_connection_lifetime within a couple of seconds.
// Environment: WSR_NPM_PREFIX, the directory whose node_modules holds
// playwright-core (the build tree: `make browser-deps`); CHROMIUM, the
// browser (default /usr/bin/chromium).
//
// Checks: the page loads under its Content-Security-Policy without a single
// violation or script error, connects to its own route (ws:// for http://),
// echoes a typed message, shows the close code and reason of a close from
// the page (1000) and of one from the server (1001), and asks for nothing
// from any other origin. Prints one JSON line; exit 0 when all held.
import { createRequire } from 'node:module';

const [echoUrl, briefUrl, screenshot] = process.argv.slice(2);
const STEP_MS = 10000;			// every wait is bounded
const WATCHDOG_MS = 60000;		// and so is the whole run

if (!echoUrl || !briefUrl || !screenshot || !process.env.WSR_NPM_PREFIX) {
	console.error('usage: WSR_NPM_PREFIX=DIR node console.mjs ECHO_URL BRIEF_URL SCREENSHOT');
	process.exit(2);
}
// playwright-core lives in the build tree, not next to this file.
const require = createRequire(process.env.WSR_NPM_PREFIX.replace(/\/?$/, '/'));
const { chromium } = require('playwright-core');

const watchdog = setTimeout(() => {
	console.error('console.mjs: still running after ' + WATCHDOG_MS + ' ms');
	process.exit(3);
}, WATCHDOG_MS);

const problems = [];
const sockets = [];

function check(cond, what) {
	if (!cond)
		throw new Error(what);
}

async function closeShown(page, code) {
	await page.waitForSelector('#close[data-code="' + code + '"]', { timeout: STEP_MS });
	return page.textContent('#close');
}

async function main() {
	const browser = await chromium.launch({
		executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
		headless: true,
		timeout: STEP_MS * 3,
		// Root (the CI container) needs --no-sandbox; the rest keeps Chromium
		// from calling home on a machine whose network is closed.
		args: [
			...(process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : []),
			'--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update',
			'--disable-sync',
		],
	});
	try {
		const page = await browser.newPage({ viewport: { width: 900, height: 560 } });
		const origin = new URL(echoUrl).origin;
		page.on('console', (m) => {
			if (m.type() === 'error')
				problems.push('console ' + m.type() + ': ' + m.text());
		});
		page.on('pageerror', (e) => problems.push('page error: ' + e.message));
		page.on('request', (r) => {
			if (new URL(r.url()).origin !== origin)
				problems.push('request to another origin: ' + r.url());
		});
		page.on('websocket', (ws) => sockets.push(ws.url()));

		// 1. Load, connect, echo.
		const resp = await page.goto(echoUrl, { timeout: STEP_MS });
		check(resp.status() === 200, 'GET ' + echoUrl + ': ' + resp.status());
		const csp = resp.headers()['content-security-policy'] || '';
		check(/default-src 'none'/.test(csp) && /connect-src 'self'/.test(csp),
		    'no strict Content-Security-Policy: ' + csp);
		await page.waitForSelector('#state.open', { timeout: STEP_MS });
		const wsUrl = echoUrl.replace(/^http/, 'ws');
		check(sockets[0] === wsUrl, 'the page connected to ' + sockets[0] + ', not ' + wsUrl);
		const text = 'hello from Chromium, \u00e9\u00e8 \u2713 <b>not bold</b>';
		await page.fill('#msg', text);
		await page.press('#msg', 'Enter');
		await page.waitForFunction((t) => [...document.querySelectorAll('#log li.recv .text')]
		    .some((e) => e.textContent === t), text, { timeout: STEP_MS });
		check(await page.$('#log b') === null, 'a received message was parsed as HTML');
		const sent = await page.$$eval('#log li.sent .text', (l) => l.map((e) => e.textContent));
		check(sent.length === 1 && sent[0] === text, 'sent log: ' + JSON.stringify(sent));

		// 2. Close from the page: the daemon answers with the same code.
		await page.click('#disconnect');
		const closedByPage = await closeShown(page, 1000);
		check(/^closed: code 1000$/.test(closedByPage), 'close display: ' + closedByPage);
		check(await page.textContent('#state') === 'closed', 'state after close');
		await page.screenshot({ path: screenshot, fullPage: true });

		// 3. Close from the server: max_connection_lifetime, 1001.
		await page.goto(briefUrl, { timeout: STEP_MS });
		const closedByServer = await closeShown(page, 1001);
		check(/code 1001, reason "connection lifetime reached"/.test(closedByServer),
		    'close display: ' + closedByServer);
		check(!/not clean/.test(closedByServer), 'the lifetime close was not clean');

		check(problems.length === 0, problems.join('; '));
		console.log(JSON.stringify({ ok: true, sockets, closedByPage, closedByServer,
		    screenshot }));
	} finally {
		await browser.close();
	}
}

main().then(() => {
	clearTimeout(watchdog);
	process.exit(0);
}, (e) => {
	console.error('console.mjs: ' + (e && e.message ? e.message : e));
	if (problems.length)
		console.error('console.mjs: also: ' + problems.join('; '));
	clearTimeout(watchdog);
	process.exit(1);
});
