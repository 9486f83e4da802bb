/**
 * The dashboard's charts of the last 15 minutes, drawn as plain SVG (a polyline per series): calls per second,
 * latency p50/p99 at the broker, peers online (a line per broker in a cluster) and refusals per second. The samples
 * come from the broker's history (one a second, server/stats-history.ts) with the dashboard stream.
 */
import { TrendSample } from '@switchboard/protocol';

const WINDOW_MS = 15 * 60 * 1000;
/** The most samples kept: the broker's ring holds as many. */
const MAX_SAMPLES = 15 * 60;
const WIDTH = 300;
const HEIGHT = 70;
const COLOURS = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#bc4c00', '#57606a'];
const SVG = 'http://www.w3.org/2000/svg';

interface Series {
    name: string;
    value: (sample: TrendSample) => number | undefined;
}

interface Chart {
    id: string;
    unit: string;
    series: (samples: TrendSample[]) => Series[];
}

const charts: Chart[] = [
    { id: 'trend-calls', unit: '/s', series: () => [{ name: 'calls', value: sample => sample.callsPerSecond }] },
    {
        id: 'trend-latency', unit: 'ms', series: () => [
            // No line through seconds without replies: a latency of 0 would be a lie.
            { name: 'p50', value: sample => sample.p99Ms ? sample.p50Ms : undefined },
            { name: 'p99', value: sample => sample.p99Ms ? sample.p99Ms : undefined },
        ],
    },
    {
        id: 'trend-peers', unit: '', series: samples => {
            // In a cluster, a line per broker as well as the namespace's total.
            const brokers = [...new Set(samples.flatMap(sample => sample.brokers.map(broker => broker.brokerId)))];
            return [
                { name: 'online', value: sample => sample.peersOnline },
                ...brokers.map(brokerId => ({ name: brokerId.length > 12 ? brokerId.slice(0, 8) + '…' : brokerId, value: (sample: TrendSample) => sample.brokers.find(broker => broker.brokerId === brokerId)?.peers })),
            ];
        },
    },
    { id: 'trend-refusals', unit: '/s', series: () => [{ name: 'refusals', value: sample => sample.refusalsPerSecond }] },
];

let samples: TrendSample[] = [];

/** Adds samples from the stream; ones already held (a snapshot overlaps the next update) are skipped. */
export function addSamples(received: TrendSample[]): void {
    const last = samples.length ? new Date(samples[samples.length - 1].at).getTime() : -Infinity;
    for (const sample of received) {
        if (new Date(sample.at).getTime() > last) samples.push(sample);
    }
    if (samples.length > MAX_SAMPLES) samples = samples.slice(samples.length - MAX_SAMPLES);
}

/** A broker's snapshot replaces what the page held (after a reconnect it may be another broker's history). */
export function resetSamples(received: TrendSample[]): void {
    samples = [];
    addSamples(received);
}

export function renderCharts(): void {
    const end = samples.length ? new Date(samples[samples.length - 1].at).getTime() : Date.now();
    const start = end - WINDOW_MS;
    const shown = samples.filter(sample => new Date(sample.at).getTime() >= start);
    for (const chart of charts) {
        const svg = document.getElementById(chart.id);
        if (svg) drawChart(svg, chart, chart.series(shown), shown, start);
    }
}

function drawChart(svg: Element, chart: Chart, series: Series[], shown: TrendSample[], start: number): void {
    const values = series.flatMap(line => shown.map(line.value)).filter((value): value is number => value !== undefined);
    const top = niceCeiling(Math.max(0, ...values));
    const x = (sample: TrendSample) => ((new Date(sample.at).getTime() - start) / WINDOW_MS * WIDTH).toFixed(1);
    const y = (value: number) => (HEIGHT - value / top * HEIGHT).toFixed(1);
    const nodes: Element[] = [
        svgElement('line', { x1: '0', y1: String(HEIGHT), x2: String(WIDTH), y2: String(HEIGHT), class: 'axis' }),
        svgElement('text', { x: '2', y: '9', class: 'label' }, `${format(top)} ${chart.unit}`.trim()),
        svgElement('text', { x: '0', y: String(HEIGHT + 9), class: 'label' }, '15 min ago'),
        svgElement('text', { x: String(WIDTH), y: String(HEIGHT + 9), class: 'label', 'text-anchor': 'end' }, 'now'),
    ];
    const legend: string[] = [];
    series.forEach((line, index) => {
        const colour = COLOURS[index % COLOURS.length];
        const points = shown.flatMap(sample => {
            const value = line.value(sample);
            return value === undefined ? [] : [`${x(sample)},${y(value)}`];
        });
        const latest = shown.length ? line.value(shown[shown.length - 1]) : undefined;
        const highest = Math.max(0, ...shown.map(line.value).filter((value): value is number => value !== undefined));
        nodes.push(svgElement('polyline', { points: points.join(' '), stroke: colour, 'data-series': line.name, 'data-latest': latest === undefined ? '' : String(latest), 'data-max': String(highest) }));
        legend.push(`${line.name} ${latest === undefined ? '–' : format(latest)}`);
    });
    svg.replaceChildren(...nodes);
    const caption = svg.parentElement?.querySelector('.legend');
    if (caption) caption.textContent = legend.join(' · ');
}

function svgElement(tag: string, attributes: Record<string, string>, text?: string): Element {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
}

/** The axis' top: 1, 2 or 5 times a power of ten, at least the largest value (at least 1). */
function niceCeiling(value: number): number {
    if (value <= 1) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    return [1, 2, 5, 10].map(step => step * power).find(candidate => candidate >= value)!;
}

function format(value: number): string {
    return value >= 100 ? String(Math.round(value)) : String(Math.round(value * 100) / 100);
}
