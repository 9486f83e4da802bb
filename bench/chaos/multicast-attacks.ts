import { request } from 'http';
import { RawClient } from './raw-client';
import { actionBody, bson, clientFrame, errorCode, frame, ReceivedFrame, Types } from './wire-frames';
import { Route } from '../../shared/wire';

/** Frame types the broker adds to Deepkit's protocol (shared/wire.ts). */
const MULTICAST = 103;
const MULTICAST_RESULT = 104;

/** A Multicast frame: one Action body for every target, target i answering under `firstId + i`. */
export function multicastFrame(id: number, targets: string[], body: Uint8Array, firstId = 2_000_000): Buffer {
    return frame({ id, route: Route.client, type: MULTICAST, body: bson({ targets, firstId, body }) });
}

/** An Action body of about `bytes` bytes: `test/echo.echo(<bytes of x>)`. */
export function bigActionBody(bytes: number): Uint8Array {
    return bson(actionBody('test/echo', 'echo', ['x'.repeat(bytes)]));
}

/** What the broker answered a raw frame: a result, a typed refusal (its code), or nothing in time. */
export function answerOf(answer: ReceivedFrame | undefined): string {
    if (!answer) return 'no answer';
    if (answer.type === Types.Error) return errorCode(answer);
    if (answer.type === MULTICAST_RESULT) return 'result';
    return `type ${answer.type}`;
}

/** How long GET /health takes to answer, in milliseconds; `timeoutMs` when it does not. */
export function healthLatency(httpUrl: string, timeoutMs: number): Promise<number> {
    const started = performance.now();
    return new Promise(resolve => {
        const call = request(`${httpUrl}/health`, { timeout: timeoutMs, agent: false }, response => {
            response.resume();
            response.on('end', () => resolve(performance.now() - started));
        });
        call.on('timeout', () => call.destroy());
        call.on('error', () => resolve(Math.max(timeoutMs, performance.now() - started)));
        call.end();
    });
}

export interface BigMulticastFigures {
    /** What the attacker got: `result`, or the code of a typed refusal. */
    answer: string;
    /** Until the attacker's answer arrived. */
    answerMs: number;
    /** The longest /health took while the attack ran (polled back to back). */
    worstHealthMs: number;
    healthAnswers: number;
}

/**
 * One Multicast naming `targets` unknown peers (no registration needed in open mode) with a body of `bodyBytes`, while
 * /health is polled back to back: how long the broker's loop was blocked shows as the slowest /health answer.
 */
export async function bigMulticast(url: string, httpUrl: string, options: { targets: number, bodyBytes: number, timeoutMs: number }): Promise<BigMulticastFigures> {
    const attacker = await RawClient.open(url, { handshake: true, timeoutMs: options.timeoutMs });
    try {
        const targets = Array.from({ length: options.targets }, (_, i) => `nobody-${i}`);
        const attack = multicastFrame(attacker.takeId(), targets, bigActionBody(options.bodyBytes));
        let running = true;
        let worstHealthMs = 0;
        let healthAnswers = 0;
        const polling = (async () => {
            while (running) {
                worstHealthMs = Math.max(worstHealthMs, await healthLatency(httpUrl, options.timeoutMs));
                healthAnswers++;
            }
        })();
        const started = performance.now();
        const answer = await attacker.request(attack, options.timeoutMs);
        const answerMs = performance.now() - started;
        // One more /health after the answer: a loop still busy with the frame shows here.
        await new Promise(resolve => setTimeout(resolve, 50));
        running = false;
        await polling;
        return { answer: answerOf(answer), answerMs, worstHealthMs, healthAnswers };
    } finally {
        attacker.terminate();
    }
}

export interface KickFigures {
    /** Whether the broker closed the victim's connection (and how). */
    victimClosed: string;
    /** What the attacker's multicast got. */
    attack: string;
    /** What the attacker's registration of the victim's ID got: `registered` is a hijack. */
    hijack: string;
}

/**
 * The kick-and-hijack of issue 18: a multicast naming the victim 4× with a `bodyBytes` body, meant to overflow the
 * victim's outgoing buffer so the broker closes it; then a second connection registers the victim's ID. The victim
 * is a raw client that registered and stopped reading, as a peer busy for a moment does.
 */
export async function kickAndHijack(url: string, options: { bodyBytes: number, timeoutMs: number, victimId?: string }): Promise<KickFigures> {
    const victimId = options.victimId ?? 'kick-victim';
    const open = () => RawClient.open(url, { handshake: true, timeoutMs: options.timeoutMs });
    const victim = await open();
    const attacker = await open();
    const thief = await open();
    try {
        const registered = await victim.request(clientFrame(victim.takeId(), Types.Action, actionBody('switchboard/broker', 'register', [victimId])), options.timeoutMs);
        if (registered?.type !== Types.ResponseActionSimple) throw new Error(`the victim could not register: ${answerOf(registered)}`);
        victim.socket.pause();
        const attack = await attacker.request(multicastFrame(attacker.takeId(), [victimId, victimId, victimId, victimId], bigActionBody(options.bodyBytes)), options.timeoutMs);
        const attackAnswer = attack?.type === MULTICAST_RESULT ? `result ${JSON.stringify(attack.body?.outcomes)}` : answerOf(attack);
        // The thief comes a moment later, as the attacker of the issue did (0.5-1 s).
        await new Promise(resolve => setTimeout(resolve, 500));
        const taken = await thief.request(clientFrame(thief.takeId(), Types.Action, actionBody('switchboard/broker', 'register', [victimId])), options.timeoutMs);
        const hijack = taken?.type === Types.ResponseActionSimple ? 'registered' : answerOf(taken);
        // A paused socket does not see its close: the victim reads again, and either its call is answered or it
        // learns it was closed.
        victim.socket.resume();
        const whoami = victim.request(clientFrame(victim.takeId(), Types.Action, actionBody('switchboard/broker', 'whoami')), options.timeoutMs);
        const victimClosed = await Promise.race([victim.closed.then(close => `closed ${close.code} ${close.reason}`), whoami.then(answer => answer ? 'open' : 'no answer')]);
        return { victimClosed, attack: attackAnswer, hijack };
    } finally {
        victim.terminate();
        attacker.terminate();
        thief.terminate();
    }
}
