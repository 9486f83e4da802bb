import { Timeout } from '../../shared';
import { startSwitchboard } from '../../testing/test-kit';
import { EchoController, heldCalls } from '../helpers';

/**
 * One deadline per call. No clock is read here: a witness timer of the same length is started right after the call,
 * in the same tick. Node fires timers of one length in the order they were made and runs the microtasks of each
 * before the next, so a call whose deadline timer was made when the call began has ended before the witness fires;
 * a call that got a fresh timer for a later stage is still pending then.
 */
function settledBeforeWitness(call: Promise<unknown>, timeoutMs: number): Promise<unknown> {
    const outcome = call.then(value => ({ value }), error => error);
    const witness = new Promise(resolve => setTimeout(() => resolve('still pending at the deadline'), timeoutMs));
    return Promise.race([outcome, witness]);
}

afterEach(() => {
    for (const release of EchoController.held.splice(0)) release();
});

describe('Peer: a call timeout is a deadline', () => {
    it('time spent waiting for our own registration is taken from the call, not added to it', async () => {
        await using kit = await startSwitchboard({ peers: [{ id: 'alice', reconnect: { initialDelayMs: 1, maxDelayMs: 10 } }, 'bob'] });
        kit.peer('bob').expose(EchoController, EchoController.path);
        const alice = kit.peer('alice');
        await alice.pause();

        // Long enough for alice to register again and load the types: the deadline must pass in the action stage.
        const timeoutMs = 3000;
        const call = alice.to('bob').controller<EchoController>(EchoController.path, { timeout: timeoutMs }).hold();
        const outcome = settledBeforeWitness(call, timeoutMs);
        await alice.resume();

        const error = await outcome;
        expect(error).toBeInstanceOf(Timeout);
        expect((error as Timeout).timeoutMs).toBe(timeoutMs);
        expect((error as Timeout).stage).toBe('action');
    });

    it('the first call of an action loads its types within the same deadline', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        kit.peer('bob').expose(EchoController, EchoController.path);
        const timeoutMs = 500;
        const error = await settledBeforeWitness(kit.peer('alice').to('bob').controller<EchoController>(EchoController.path, { timeout: timeoutMs }).hold(), timeoutMs);
        expect(error).toBeInstanceOf(Timeout);
        expect((error as Timeout).stage).toBe('action');
    });

    it('retries of an idempotent call never extend its deadline', async () => {
        await using kit = await startSwitchboard({ peers: [{ id: 'alice', retry: { attempts: 5, initialDelayMs: 1, maxDelayMs: 1 } }, 'bob'] });
        kit.peer('bob').expose(EchoController, EchoController.path);
        const timeoutMs = 500;
        const retried = kit.peer('alice').to('bob').controller<EchoController>(EchoController.path, { timeout: timeoutMs, idempotent: ['hold'] });
        // Types loaded beforehand: the only stage left is the action and its retries.
        const first = retried.hold();
        await heldCalls(1);
        EchoController.held.shift()!();
        expect(await first).toBe('released');

        const error = await settledBeforeWitness(retried.hold(), timeoutMs);
        expect(error).toBeInstanceOf(Timeout);
        expect((error as Timeout).timeoutMs).toBe(timeoutMs);
    });
});
