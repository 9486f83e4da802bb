import { randomBytes } from 'crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Peer } from '../peer';
import { Measurement, Sizes } from './scenarios';
import { ServerProcess } from './systems';

export const UNSEALED = 'Switchboard, sealing off';

/**
 * 8. What sealing costs: chat messages and a file transfer between two peers with sealing on (the default) and two
 * with `sealing: false`, through the same broker in the same run, measured alternately so both see the same machine.
 */
export async function sealingCost(sizes: Sizes): Promise<Measurement[]> {
    const server = await ServerProcess.start('switchboard.ts');
    const url = `ws://127.0.0.1:${server.port}`;
    const directory = mkdtempSync(join(tmpdir(), 'switchboard-bench-sealing-'));
    // The receivers read nothing: their unread quota per sender would refuse the bench's messages.
    const chat = { unreadPerSender: 1_000_000_000, unreadBytesPerSender: 1_000_000_000_000 };
    const pairs = {
        sealed: [await Peer.connect({ url, id: 'alice', chat }), await Peer.connect({ url, id: 'bob', chat })],
        plain: [await Peer.connect({ url, id: 'alice-plain', sealing: false, chat }), await Peer.connect({ url, id: 'bob-plain', sealing: false, chat })],
    };
    try {
        const messages = Math.max(200, Math.round(sizes.throughputCalls / 10));
        const chatRate = async ([sender, recipient]: Peer[]) => {
            let sent = 0;
            const started = performance.now();
            // 16 in flight: each send commits a record and an outbox entry at the sender, and a record at the recipient.
            await Promise.all(Array.from({ length: 16 }, async () => {
                while (sent < messages) {
                    sent++;
                    await sender.chat.send(recipient.id, 'a chat message of about sixty bytes, as people type them');
                }
            }));
            return messages / ((performance.now() - started) / 1000);
        };
        const content = randomBytes(sizes.fileBytes);
        const source = join(directory, 'file.bin');
        writeFileSync(source, content);
        const megabytes = sizes.fileBytes / 1024 / 1024;
        const fileRate = async ([sharer, downloader]: Peer[]) => {
            const shared = await sharer.files.share(source);
            const copy = join(directory, `copy-${downloader.id}.bin`);
            const started = performance.now();
            await downloader.files.fetch(sharer.id, shared.id, copy);
            const seconds = (performance.now() - started) / 1000;
            // Without the copy the next round copies from the local cache instead of downloading.
            rmSync(copy);
            return megabytes / seconds;
        };
        // Warm both (keys pinned, JIT) before measuring either.
        for (const pair of [pairs.sealed, pairs.plain]) await pair[0].chat.send(pair[1].id, 'warm-up');
        const rates = { chat: { sealed: [] as number[], plain: [] as number[] }, file: { sealed: [] as number[], plain: [] as number[] } };
        for (let round = 0; round < Math.max(3, sizes.fileRounds); round++) {
            rates.chat.sealed.push(await chatRate(pairs.sealed));
            rates.chat.plain.push(await chatRate(pairs.plain));
            rates.file.sealed.push(await fileRate(pairs.sealed));
            rates.file.plain.push(await fileRate(pairs.plain));
        }
        const chatScenario = `sealed chat (${messages} messages, 16 in flight)`;
        const fileScenario = `sealed file transfer (${megabytes} MiB)`;
        return [
            { scenario: chatScenario, system: 'Switchboard', metric: 'throughput', unit: 'messages/s', value: median(rates.chat.sealed), better: 'higher' },
            { scenario: chatScenario, system: UNSEALED, metric: 'throughput', unit: 'messages/s', value: median(rates.chat.plain), better: 'higher' },
            { scenario: fileScenario, system: 'Switchboard', metric: 'rate', unit: 'MB/s', value: median(rates.file.sealed), better: 'higher' },
            { scenario: fileScenario, system: UNSEALED, metric: 'rate', unit: 'MB/s', value: median(rates.file.plain), better: 'higher' },
        ];
    } finally {
        for (const peer of [...pairs.sealed, ...pairs.plain]) await peer.close();
        await server.stop();
        rmSync(directory, { recursive: true, force: true });
    }
}

function median(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
}
