/**
 * Preloaded into the broker by the soak section (`node --expose-gc -r …/heap-probe.ts`): the broker exposes no heap
 * gauge, so on SIGUSR2 this collects garbage and prints the heap in use, which the harness reads from the output.
 */
process.on('SIGUSR2', () => {
    (globalThis as { gc?: () => void }).gc?.();
    const { heapUsed, heapTotal, rss, external } = process.memoryUsage();
    process.stdout.write(`chaos-heap ${JSON.stringify({ heapUsed, heapTotal, rss, external })}\n`);
});
