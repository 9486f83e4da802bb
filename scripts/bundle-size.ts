/**
 * `npm run bundle-size`: what a browser app carries of the peer SDK. Bundles two small apps the way an app's bundler
 * would (esbuild, browser platform, minified, Deepkit's runtime types in; server/web/bundler.ts) — one on `Peer`
 * (`@switchboard/peer`: every built-in, and the opt-in features its index exports), `PeerCore` with the five
 * built-ins, with chat only, and with nothing — and prints their sizes, minified and gzipped.
 */
import { join } from 'path';
import { gzipSync } from 'zlib';
import { bundleForBrowser } from '../server/web/bundler';

const apps: Record<string, string> = {
    'Peer (every built-in)': 'bundle-size/full-peer.ts',
    'PeerCore + 5 built-ins': 'bundle-size/builtins-peer.ts',
    'PeerCore + chat()': 'bundle-size/chat-only-peer.ts',
    'PeerCore alone': 'bundle-size/core-only-peer.ts',
};

function kib(bytes: number): string {
    return `${(bytes / 1024).toFixed(1)} KiB`;
}

async function main(): Promise<void> {
    const sizes: { app: string, minified: number, gzip: number }[] = [];
    for (const [app, entry] of Object.entries(apps)) {
        const { code } = await bundleForBrowser(join(__dirname, entry), { format: 'esm' });
        sizes.push({ app, minified: Buffer.byteLength(code), gzip: gzipSync(code, { level: 9 }).length });
    }
    const [full] = sizes;
    for (const { app, minified, gzip } of sizes) {
        const share = minified === full.minified ? '' : ` (${Math.round(100 * minified / full.minified)} % / ${Math.round(100 * gzip / full.gzip)} % of the full one)`;
        console.log(`${app.padEnd(24)} ${String(minified).padStart(9)} bytes minified (${kib(minified)}), ${String(gzip).padStart(8)} gzip (${kib(gzip)})${share}`);
    }
}

main().catch(error => {
    console.error(error);
    process.exit(1);
});
