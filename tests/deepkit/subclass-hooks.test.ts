import { RpcServer } from '@deepkit/framework';
import {
    DirectClient, rpc, RpcClient, RpcKernel, RpcKernelConnection, RpcKernelSecurity, RpcMessage, RpcPeerExchange, RpcServerAction,
} from '@deepkit/rpc';

/**
 * Contract of our subclasses of Deepkit's classes (see shared/deepkit/README.md): the protected (and public but
 * undocumented) members each one reads, calls or overrides still exist on Deepkit's classes, and the constructors we
 * call ourselves still take the arguments we pass, in that order. Fails when a Deepkit upgrade renames or moves one;
 * TypeScript alone would not notice a member the subclass only overrides, nor a reordered constructor argument.
 */
type Hooks = { methods: string[], fields: string[] };

/** Per Deepkit class: what our subclasses use of it, and which of ours do. */
const hooks: Record<string, Hooks & { ours: string }> = {
    RpcKernel: {
        ours: 'BrokerKernel (server/kernel.ts), PeerKernel (peer/kernel.ts)',
        methods: ['createConnection', 'getEventDispatcher', 'registerController'],
        fields: ['injector', 'logger', 'stats', 'connections', 'cache', 'controllers', 'onConnectionListeners', 'RpcKernelConnection'],
    },
    RpcPeerExchange: { ours: 'UnusedStockExchange (server/kernel.ts)', methods: ['register', 'deregister'], fields: [] },
    RpcKernelConnection: {
        ours: 'BrokerConnection (server/connection.ts), PeerKernelConnection (peer/kernel.ts)',
        methods: ['feed', 'onMessage', 'handleMessage', 'close', 'registerAsPeer', 'deregisterAsPeer', 'authenticate'],
        fields: ['actionHandler', 'stats', 'cache', 'controllers', 'injector', 'eventDispatcher', 'security', 'sessionState', 'logger', 'transportConnection', 'id', 'closed'],
    },
    RpcServerAction: { ours: 'ValidatingServerAction (shared/validation.ts)', methods: ['handleAction', 'handleActionTypes', 'loadTypes'], fields: ['security'] },
    RpcKernelSecurity: {
        ours: 'SwitchboardSecurity (server/security.ts), PeerSecurity (peer/kernel.ts)',
        methods: ['authenticate', 'hasControllerAccess', 'isAllowedToRegisterAsPeer', 'isAllowedToSendToPeer', 'transformError'], fields: [],
    },
    RpcClient: {
        ours: 'PeerClient (peer/peer-client.ts), LinkClient (peer/features/links/link-client.ts)',
        methods: ['onHandshake', 'onMessage', 'onClose', 'sendMessage', 'connect', 'getId'],
        fields: ['transport', 'messageId', 'replies', 'actionClient', 'transporter'],
    },
    RpcServer: { ours: 'BrokerWebSocketServer (server/websocket-server.ts)', methods: ['start'], fields: [] },
};

function stockInstances(): Record<string, object> {
    const kernel = new RpcKernel();
    const connection = kernel.createConnection({ writeBinary: () => undefined, close: () => undefined }) as RpcKernelConnection;
    return {
        RpcKernel: kernel,
        RpcPeerExchange: new RpcPeerExchange(),
        RpcKernelConnection: connection,
        RpcServerAction: (connection as unknown as { actionHandler: RpcServerAction }).actionHandler,
        RpcKernelSecurity: new RpcKernelSecurity(),
        RpcClient: new DirectClient(kernel),
        RpcServer: Object.create(RpcServer.prototype),
    };
}

/** A function's source without the build's module aliases (`model_js_1.X` → `X`) and whitespace runs. */
function normalized(source: string): string {
    return source.replace(/\b\w+_js_1\./g, '').replace(/\s+/g, ' ');
}

describe('Deepkit members our subclasses rely on', () => {
    const instances = stockInstances();
    it.each(Object.entries(hooks))('%s still has the members our subclasses use', (base, { methods, fields }) => {
        const instance = instances[base] as Record<string, unknown>;
        const missingMethods = methods.filter(name => typeof instance[name] !== 'function');
        const missingFields = fields.filter(name => !(name in instance));
        expect({ base, missingMethods, missingFields }).toEqual({ base, missingMethods: [], missingFields: [] });
    });

    it("RpcKernel.createConnection builds its connection as BrokerKernel's copy of it does", () => {
        // server/kernel.ts repeats Deepkit's createConnection to construct BrokerConnection with these arguments.
        expect(normalized(RpcKernelConnection.toString())).toContain(
            'constructor(stats, logger, transport, connections, injector, eventDispatcher, cache, controllers, security = new RpcKernelSecurity(), peerExchange)',
        );
        expect(normalized(RpcKernel.prototype.createConnection.toString())).toContain(
            "new this.RpcKernelConnection(new ForwardedRpcStats(this.stats), this.logger.scoped('rpc:connection'), transport, this.connections, injector, "
            + 'this.getEventDispatcher(), this.cache, this.controllers, injector.get(RpcKernelSecurity), this.peerExchange);',
        );
        expect(normalized(RpcKernel.prototype.createConnection.toString())).toContain('for (const on of this.onConnectionListeners) on(connection, injector, this.logger);');
        expect(normalized(RpcKernel.prototype.createConnection.toString())).toContain('this.getEventDispatcher().dispatch(onRpcConnection, { context: { connection, injector } });');
    });

    it('RpcKernelConnection builds its action handler as our connections replace it', () => {
        // BrokerConnection and PeerKernelConnection replace `actionHandler` with ValidatingServerAction, same arguments.
        expect(RpcServerAction.length).toBe(9);
        const connection = instances.RpcKernelConnection as unknown as Record<string, unknown>;
        const handler = connection.actionHandler as Record<string, unknown>;
        expect(handler).toBeInstanceOf(RpcServerAction);
        for (const field of ['cache', 'controllers', 'injector', 'eventDispatcher', 'security', 'sessionState', 'logger']) expect(handler[field]).toBe(connection[field]);
        expect(handler.connection).toBe(connection);
    });

    it('a connection learns its peer ID in myPeerId when it registers (the broker reads it as peerId)', async () => {
        const connections: RpcKernelConnection[] = [];
        class OpenSecurity extends RpcKernelSecurity {
            override async isAllowedToRegisterAsPeer(): Promise<boolean> {
                return true;
            }
        }
        const open = new RpcKernel([{ provide: RpcKernelSecurity, useClass: OpenSecurity, scope: 'rpc' }]);
        open.onConnection(connection => void connections.push(connection as RpcKernelConnection));
        const client = new DirectClient(open);
        await client.registerAsPeer('carol');
        expect(connections).toHaveLength(1);
        expect((connections[0] as unknown as { myPeerId?: string }).myPeerId).toBe('carol');
        await client.disconnect();
    });

    it("an RpcMessage answers getPeerId() from its peerId field (CheckedRpcMessage sets it, so Deepkit does not parse it again)", () => {
        expect(RpcMessage.length).toBe(4); // id, composite, type, routeType; bodyOffset, bodySize, buffer are optional
        class Preset extends RpcMessage {
            constructor() {
                super(1, false, 8, 3, 0, 0, new Uint8Array(0));
                this.peerId = 'preset';
            }
        }
        expect(new Preset().getPeerId()).toBe('preset');
    });

    it("Deepkit caches each called action under 'controller!method' with what the lean call path serves it with", async () => {
        // peer/calls/lean-serving.ts answers a call from this cache entry (through PeerKernelConnection.leanView());
        // when its shape changes the lean path quietly steps aside for Deepkit's, so this is where a change shows.
        @rpc.controller('contract/lean')
        class Lean {
            @rpc.action()
            twice(value: number): number {
                return value * 2;
            }
        }
        const kernel = new RpcKernel();
        kernel.registerController(Lean, 'contract/lean');
        const client = new DirectClient(kernel);
        expect(await client.controller<Lean>('contract/lean').twice(21)).toBe(42);
        const cached = (kernel as unknown as { cache: { actions: Record<string, Record<string, any>> } }).cache.actions['contract/lean!twice'];
        expect(cached).toBeDefined();
        for (const member of ['fn', 'resolver', 'bodyDecoder']) expect(typeof cached[member]).toBe('function');
        expect(typeof cached.types.parametersValidate).toBe('function');
        expect(cached.types.resultSchema).toBeDefined();
        expect(cached.types.mode).toBe('arbitrary');
        expect(cached.types.type).toBeDefined();
        expect(typeof cached.action.strictSerialization).toBe('boolean');
        expect(Array.isArray(cached.controller.actionGroups)).toBe(true);
        expect(typeof cached.label).toBe('string');
        await client.disconnect();
    });

    it('RpcClient keeps its pending replies in replies and numbers messages with messageId', () => {
        const client = instances.RpcClient as unknown as { replies: unknown, messageId: unknown };
        expect(client.replies).toBeInstanceOf(Map);
        expect(typeof client.messageId).toBe('number');
    });
});
