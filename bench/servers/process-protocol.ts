/**
 * How a benchmark server talks to the harness: it prints one JSON line `{"port": …}` when it listens, answers
 * `rss` on stdin with `{"rss": <bytes>}`, and exits when stdin closes.
 */
export function serveBenchmark(port: number, close: () => Promise<unknown> | unknown): void {
    process.stdout.write(JSON.stringify({ port }) + '\n');
    let input = '';
    process.stdin.on('data', chunk => {
        input += chunk;
        let newline: number;
        while ((newline = input.indexOf('\n')) >= 0) {
            const command = input.slice(0, newline).trim();
            input = input.slice(newline + 1);
            if (command === 'rss') {
                global.gc?.();
                process.stdout.write(JSON.stringify({ rss: process.memoryUsage().rss }) + '\n');
            }
        }
    });
    process.stdin.on('end', async () => {
        await close();
        process.exit(0);
    });
}
