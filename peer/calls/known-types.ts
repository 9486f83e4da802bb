import { isPrototypeOfBase } from '@deepkit/core';
import { Collection, EntitySubject, RpcControllerState } from '@deepkit/rpc';
import { parametersToTuple, ReflectionKind, resolveReceiveType, ReceiveType, Type, TypeObjectLiteral } from '@deepkit/type';
import { Observable } from 'rxjs';

/** What Deepkit's action client keeps per action once it has its types (`RpcControllerState.getState(m).types`). */
type ActionTypes = NonNullable<ReturnType<RpcControllerState['getState']>['types']>;

/** Per contract type, the action types of each of its methods: built once per process, shared by every client. */
const byContract = new WeakMap<Type, Map<string, ActionTypes>>();

/**
 * Gives a controller state the types of the contract's actions (an interface the app and the other side share, e.g.
 * BrokerApi), so that no call asks the other side for them (Deepkit's ActionType round trip) and every connection
 * reuses the same compiled serializers. Built as Deepkit's own `loadActionTypes` builds them from the answer of the
 * other side; actions answering with a collection or an entity subject are left to that round trip.
 */
export function primeActionTypes<T>(state: RpcControllerState, contract?: ReceiveType<T>): RpcControllerState {
    // Without the contract's type (a build without Deepkit's type compiler) the types are asked for, as before.
    if (!contract) return state;
    let type: Type;
    try {
        type = resolveReceiveType(contract);
    } catch {
        return state;
    }
    const known = actionTypesOf(type);
    for (const [method, types] of known) {
        const entry = state.getState(method);
        entry.types ??= types;
    }
    return state;
}

function actionTypesOf(contract: Type): Map<string, ActionTypes> {
    let known = byContract.get(contract);
    if (known) return known;
    known = new Map();
    if (contract.kind === ReflectionKind.objectLiteral || contract.kind === ReflectionKind.class) {
        for (const member of contract.types) {
            if (member.kind !== ReflectionKind.methodSignature && member.kind !== ReflectionKind.method) continue;
            if (typeof member.name !== 'string') continue;
            const types = actionTypes(parametersToTuple(member.parameters), member.return);
            if (types) known.set(member.name, types);
        }
    }
    byContract.set(contract, known);
    return known;
}

/** As the serving side reports them (RpcServerAction.loadTypes) and the calling side reads them (loadActionTypes). */
function actionTypes(parameters: Type, returns: Type): ActionTypes | undefined {
    let full = returns.kind === ReflectionKind.promise ? returns.type : returns;
    let unwrapped = full;
    if (unwrapped.kind === ReflectionKind.union) {
        const defined = unwrapped.types.filter(type => type.kind !== ReflectionKind.undefined && type.kind !== ReflectionKind.null);
        if (defined.length === 1) unwrapped = defined[0];
    }
    let mode: ActionTypes['mode'] = 'arbitrary';
    if (unwrapped.kind === ReflectionKind.class) {
        if (isPrototypeOfBase(unwrapped.classType, Collection) || isPrototypeOfBase(unwrapped.classType, EntitySubject)) return undefined;
        if (isPrototypeOfBase(unwrapped.classType, Observable)) {
            mode = 'observable';
            full = unwrapped.typeArguments?.[0] ?? { kind: ReflectionKind.any };
        }
    }
    const property = (name: string, type: Type) => ({ kind: ReflectionKind.propertySignature, name, type }) as TypeObjectLiteral['types'][number];
    const object = (...types: TypeObjectLiteral['types']) => ({ kind: ReflectionKind.objectLiteral, types }) as TypeObjectLiteral;
    return {
        mode,
        callSchema: object(property('controller', { kind: ReflectionKind.string }), property('method', { kind: ReflectionKind.string }), property('args', parameters)),
        resultSchema: object(property('v', full)),
        observableNextSchema: object(property('id', { kind: ReflectionKind.number }), property('v', full)),
    } as ActionTypes;
}
