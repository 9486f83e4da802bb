import { ReflectionKind, ReflectionVisibility, Type } from '@deepkit/type';

/** A JSON Schema (draft 2020-12, as OpenAPI 3.1 uses it). */
export type JsonSchema = Record<string, unknown>;

/** Nested types described at most; deeper ones (and recursive ones) are described as any value. */
const MAX_DEPTH = 8;

/**
 * A JSON Schema of a Deepkit type as it travels in JSON: what an HTTP client must send as an argument or will receive
 * as a result. Validation types (`MinLength` …) are not translated: the peer validates them and answers 400 with the
 * items that failed.
 */
export function jsonSchemaOf(type: Type, depth = 0): JsonSchema {
    if (depth > MAX_DEPTH) return {};
    const next = (inner: Type) => jsonSchemaOf(inner, depth + 1);
    switch (type.kind) {
        case ReflectionKind.string:
        case ReflectionKind.templateLiteral:
            return { type: 'string' };
        case ReflectionKind.number:
            return { type: 'number' };
        case ReflectionKind.bigint:
            return { type: 'integer' };
        case ReflectionKind.boolean:
            return { type: 'boolean' };
        case ReflectionKind.null:
            return { type: 'null' };
        case ReflectionKind.literal:
            return typeof type.literal === 'bigint' || typeof type.literal === 'symbol' ? { const: String(type.literal) } : type.literal instanceof RegExp ? { type: 'string' } : { const: type.literal };
        case ReflectionKind.enum:
            return { enum: type.values.filter(value => value !== undefined) };
        case ReflectionKind.promise:
            return next(type.type);
        case ReflectionKind.array:
            return { type: 'array', items: next(type.type) };
        case ReflectionKind.tuple:
            return { type: 'array', prefixItems: type.types.map(member => next(member.type)), minItems: type.types.filter(member => !member.optional).length, maxItems: type.types.length };
        case ReflectionKind.union: {
            const members = type.types.filter(member => member.kind !== ReflectionKind.undefined);
            if (members.length && members.every(member => member.kind === ReflectionKind.literal)) {
                return { enum: members.map(member => (member as { literal: unknown }).literal) };
            }
            if (members.length === 1) return next(members[0]);
            return { anyOf: members.map(next) };
        }
        case ReflectionKind.class:
            if (type.classType === Date) return { type: 'string', format: 'date-time' };
            if (type.classType === Uint8Array || type.classType === ArrayBuffer) return { type: 'string', contentEncoding: 'base64' };
            if (type.classType === Set) return { type: 'array', items: type.typeArguments?.[0] ? next(type.typeArguments[0]) : {} };
            if (type.classType === Map) return { type: 'array', items: { type: 'array' } };
            return objectSchema(type.types, depth);
        case ReflectionKind.objectLiteral:
            return objectSchema(type.types, depth);
        default:
            // any, unknown, void, undefined, functions: nothing a JSON client can be told about.
            return {};
    }
}

function objectSchema(members: Type[], depth: number): JsonSchema {
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const member of members) {
        if (member.kind !== ReflectionKind.property && member.kind !== ReflectionKind.propertySignature) continue;
        if (typeof member.name !== 'string') continue;
        if (member.kind === ReflectionKind.property && (member.visibility !== ReflectionVisibility.public || member.type.kind === ReflectionKind.function)) continue;
        properties[member.name] = jsonSchemaOf(member.type, depth + 1);
        if (!member.optional) required.push(member.name);
    }
    return required.length ? { type: 'object', properties, required } : { type: 'object', properties };
}
