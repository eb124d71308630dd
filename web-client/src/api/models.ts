// Names for the REST shapes of proto/openapi.yaml. The types themselves are generated from the
// spec into schema.d.ts (`npm run gen:api`, run before every build, type check and test run),
// so they are never written twice.
import type { components } from './schema';

type Schemas = components['schemas'];

export type User = Schemas['User'];
export type Me = Schemas['Me'];
export type Session = Schemas['Session'];
export type Role = Schemas['Role'];
export type Project = Schemas['Project'];
export type Member = Schemas['Member'];
export type Invite = Schemas['Invite'];
export type Model = Schemas['Model'];
export type ModelParams = Schemas['ModelParams'];
export type LoraFile = Schemas['LoraFile'];
export type LoraRequest = Schemas['LoraRequest'];
export type JobLora = Schemas['JobLora'];
export type SizePair = Schemas['SizePair'];
/** `GET /api/v1/models`: the models, and every LoRA file the server found. */
export interface ModelCatalog {
  models: Model[];
  loras: LoraFile[];
}
export type JobSubmit = Schemas['JobSubmit'];
export type Job = Schemas['Job'];
export type JobState = Schemas['JobState'];
export type GenerationMode = Schemas['GenerationMode'];
export type Image = Schemas['Image'];
export type ImageDetail = Schemas['ImageDetail'];
export type ReactionCounts = Schemas['ReactionCounts'];
export type ReactionChange = Schemas['ReactionChange'];
export type ApiEvent = Schemas['Event'];
export type ErrorBody = Schemas['Error'];
