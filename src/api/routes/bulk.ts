import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { BulkTaskRunner, ProvisioningErrors } from '../../provisioning/index.ts';
import type { BulkInputFormat } from '../../provisioning/index.ts';
import type { PageRequest } from '../../registry/index.ts';
import type { ApiDependencies } from '../context.ts';
import { S, ctxOf, paramsOf, queryOf } from '../route-helpers.ts';

/** Largest bulk upload (issue 7: tens of thousands to millions of devices per file). */
export const BULK_BODY_LIMIT = 2 * 1024 * 1024 * 1024;

const taskParams = { type: 'object', required: ['taskId'], additionalProperties: false, properties: { taskId: { type: 'string', pattern: '^[0-9a-f-]{36}$' } } } as const;
const roles = { roles: ['admin', 'operator', 'manufacturer'] as const };

/** A bulk task as the API answers it (BulkTaskView), for the OpenAPI document and the answer's serialisation. */
const TASK_SCHEMA = {
  type: 'object',
  required: ['taskId', 'templateName', 'templateVersionId', 'format', 'status', 'total', 'processed', 'succeeded', 'alreadyPresent', 'failed', 'rate', 'checkpointLine', 'error', 'createdAt', 'updatedAt'],
  properties: {
    taskId: { type: 'string' },
    templateName: { type: 'string' },
    templateVersionId: { type: ['integer', 'null'], description: 'The template version applied to every line, on every run (resume included); null only for a task of an earlier version not run since.' },
    format: { type: 'string' },
    status: { type: 'string', enum: ['RUNNING', 'STOPPING', 'STOPPED', 'COMPLETED', 'FAILED'] },
    total: { type: 'integer' },
    processed: { type: 'integer' },
    succeeded: { type: 'integer' },
    alreadyPresent: { type: 'integer' },
    failed: { type: 'integer' },
    rate: { type: 'number' },
    checkpointLine: { type: 'integer' },
    error: { type: ['string', 'null'] },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
  },
} as const;

/**
 * Bulk registration tasks (issue 7): upload JSON lines or CSV (streamed to the data directory, never held in
 * memory), follow progress, stop, resume, and download per-line results and errors as JSON lines.
 */
export function registerBulkRoutes(app: FastifyInstance, deps: ApiDependencies): void {
  const runner = new BulkTaskRunner({
    store: deps.store,
    cas: deps.controlPlane.cas,
    dataDir: deps.config.dataDir,
    batchSize: deps.config.bulkBatchLines,
    onTaskError: (taskId, error) => deps.logger.error({ err: error, taskId }, 'bulk task failed'),
  });

  void app.register(async (scope) => {
    // The body stays a stream: the runner writes it to disk with its own byte limit.
    scope.addContentTypeParser(['application/x-ndjson', 'application/jsonl', 'text/csv'], (_request, payload, done) => done(null, payload));
    scope.addHook('onClose', async () => runner.close());

    scope.post('/v1/bulk-tasks', {
      config: roles,
      bodyLimit: BULK_BODY_LIMIT,
      schema: {
        tags: ['bulk'],
        querystring: {
          type: 'object', required: ['templateName'], additionalProperties: false,
          properties: { templateName: { type: 'string', minLength: 1, maxLength: 36, pattern: '^[0-9A-Za-z_-]+$' }, format: { type: 'string', enum: ['jsonl', 'csv'] } },
        },
        response: { 201: TASK_SCHEMA },
      },
    }, async (request, reply) => {
      const q = queryOf<{ templateName: string; format?: BulkInputFormat }>(request);
      const contentType = request.headers['content-type'] ?? '';
      const format: BulkInputFormat = q.format ?? (contentType.startsWith('text/csv') ? 'csv' : 'jsonl');
      if (!(request.body instanceof Readable)) throw ProvisioningErrors.error('PROVISIONING_BULK_FORMAT_INVALID', 'send the devices as Content-Type application/x-ndjson (JSON lines) or text/csv');
      const input = request.body;
      const task = await runner.createTask(ctxOf(request), { templateName: q.templateName, format, input, maxBytes: BULK_BODY_LIMIT });
      return reply.status(201).send(task);
    });

    // Paged like every list: maxResults (default 50, at most 250) and the nextToken of the previous page.
    scope.get('/v1/bulk-tasks', {
      config: roles,
      schema: {
        tags: ['bulk'],
        querystring: { type: 'object', additionalProperties: false, properties: { ...S.paging } },
        response: { 200: { type: 'object', required: ['tasks'], properties: { tasks: { type: 'array', items: TASK_SCHEMA }, nextToken: { type: 'string' } } } },
      },
    }, async (request) => {
      const page = await runner.listTasks(ctxOf(request).tenantId, queryOf<PageRequest>(request));
      return { tasks: page.items, nextToken: page.nextToken };
    });

    scope.get('/v1/bulk-tasks/:taskId', { config: roles, schema: { tags: ['bulk'], params: taskParams, response: { 200: TASK_SCHEMA } } }, async (request) =>
      runner.getTask(ctxOf(request).tenantId, paramsOf<{ taskId: string }>(request).taskId));

    scope.post('/v1/bulk-tasks/:taskId/stop', { config: roles, schema: { tags: ['bulk'], params: taskParams, response: { 200: TASK_SCHEMA } } }, async (request) =>
      runner.stopTask(ctxOf(request), paramsOf<{ taskId: string }>(request).taskId));

    scope.post('/v1/bulk-tasks/:taskId/resume', { config: roles, schema: { tags: ['bulk'], params: taskParams, response: { 200: TASK_SCHEMA } } }, async (request) =>
      runner.resumeTask(ctxOf(request), paramsOf<{ taskId: string }>(request).taskId));

    for (const kind of ['results', 'errors'] as const) {
      scope.get(`/v1/bulk-tasks/:taskId/${kind}`, { config: roles, schema: { tags: ['bulk'], params: taskParams } }, async (request, reply) => {
        const { taskId } = paramsOf<{ taskId: string }>(request);
        const tenantId = ctxOf(request).tenantId;
        await runner.getTask(tenantId, taskId);
        await runner.audit(ctxOf(request), `bulk.task.${kind}.download`, taskId, {});
        return reply.type('application/x-ndjson').send(Readable.from(runner.streamResults(tenantId, taskId, kind)));
      });
    }
  });
}
