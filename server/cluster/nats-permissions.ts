import { ClusterNames } from './cluster-names';
import { inboxPrefixOf } from './nats-servers';

/** One user of nats-server's `authorization { users = [...] }`. */
export interface NatsUser {
    user: string;
    password: string;
    permissions: { publish: { allow: string[] }, subscribe: { allow: string[] } };
}

/** The cluster's JetStream buckets: its directory, its tokens, its registry (ClusterState) and its held peer IDs. */
function bucketsOf(names: ClusterNames): string[] {
    return [names.bucket, `${names.bucket}_tokens`, `${names.bucket}_peers`, `${names.bucket}_holds`];
}

/**
 * What a client needs of the JetStream API to use the KV buckets `buckets` (create or bind, put, create, update,
 * delete, get, watch) and nothing else: each subject names the bucket's stream, so one cluster's users cannot reach
 * another cluster's buckets, nor any other stream on the same NATS.
 */
function keyValueSubjects(buckets: string[]): string[] {
    return ['$JS.API.INFO', ...buckets.flatMap(bucket => {
        const stream = `KV_${bucket}`;
        return [
            `$KV.${bucket}.>`,
            `$JS.API.STREAM.INFO.${stream}`, `$JS.API.STREAM.CREATE.${stream}`, `$JS.API.STREAM.MSG.GET.${stream}`,
            `$JS.API.DIRECT.GET.${stream}`, `$JS.API.DIRECT.GET.${stream}.>`,
            `$JS.API.CONSUMER.CREATE.${stream}`, `$JS.API.CONSUMER.CREATE.${stream}.>`,
            `$JS.API.CONSUMER.DELETE.${stream}.>`, `$JS.API.CONSUMER.INFO.${stream}.>`,
            // A watch's flow control answers.
            `$JS.FC.${stream}.>`,
        ];
    })];
}

/** A broker writes its own audit rows to the cluster's audit stream, which it may create. */
function auditWriteSubjects(names: ClusterNames, brokerId: string): string[] {
    const stream = names.auditStream;
    return [names.auditSubject(brokerId), `$JS.API.STREAM.INFO.${stream}`, `$JS.API.STREAM.CREATE.${stream}`];
}

/** `switchboard audit` with a NATS URL reads the cluster's audit stream, row by row. */
function auditReadSubjects(names: ClusterNames): string[] {
    const stream = names.auditStream;
    return [`$JS.API.STREAM.INFO.${stream}`, `$JS.API.STREAM.MSG.GET.${stream}`];
}

/**
 * The NATS user of one broker: it may publish to every broker's inbox of its cluster and to the control subject,
 * use its cluster's buckets, and receive only its own inbox, the control subject and its own replies. A broker
 * cannot read frames meant for another broker, nor another cluster's anything.
 *
 * The broker's `brokerId` must be set (a generated ID cannot be known in advance).
 */
export function brokerUser(cluster: string, brokerId: string, user: string, password: string): NatsUser {
    const names = new ClusterNames(cluster);
    return {
        user,
        password,
        permissions: {
            publish: { allow: [`${names.prefix}.b.*`, names.control, ...keyValueSubjects(bucketsOf(names)), ...auditWriteSubjects(names, brokerId)] },
            subscribe: { allow: [names.inbox(brokerId), names.control, `${inboxPrefixOf(user)}.>`] },
        },
    };
}

/** The user of the token commands (`token:create --natsUrl …`): the cluster's buckets, no frames. */
export function operatorUser(cluster: string, user: string, password: string): NatsUser {
    return {
        user,
        password,
        permissions: {
            publish: { allow: [...keyValueSubjects(bucketsOf(new ClusterNames(cluster))), ...auditReadSubjects(new ClusterNames(cluster))] },
            subscribe: { allow: [`${inboxPrefixOf(user)}.>`] },
        },
    };
}

/**
 * A nats-server configuration file: JetStream with its store, listening on loopback (or `host`; port -1: a free
 * one), and only the given users. (The format is a superset of JSON, so the users are written as JSON.)
 */
export function natsServerConfig(options: { port: number, storeDirectory: string, users: NatsUser[], host?: string }): string {
    return [
        `host: ${JSON.stringify(options.host ?? '127.0.0.1')}`,
        `port: ${options.port}`,
        `jetstream: { store_dir: ${JSON.stringify(options.storeDirectory)} }`,
        `authorization: { users: ${JSON.stringify(options.users, undefined, 2)} }`,
        '',
    ].join('\n');
}
