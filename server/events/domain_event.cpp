#include "server/events/domain_event.h"

namespace atelier::events {

std::string_view event_type(const DomainEvent& event) {
  return std::visit(overloaded{
                        [](const ProjectCreated&) -> std::string_view { return "project.created"; },
                        [](const ProjectUpdated&) -> std::string_view { return "project.updated"; },
                        [](const ProjectDeleted&) -> std::string_view { return "project.deleted"; },
                        [](const MemberChanged& m) -> std::string_view {
                          switch (m.kind) {
                            case MemberChanged::Kind::kAdded:
                              return "member.added";
                            case MemberChanged::Kind::kJoined:
                              return "member.joined";
                            case MemberChanged::Kind::kRoleChanged:
                              return "member.role_changed";
                            case MemberChanged::Kind::kLeft:
                              return "member.left";
                            case MemberChanged::Kind::kRemoved:
                              return "member.removed";
                          }
                          return "member.changed";
                        },
                        [](const JobChanged& j) -> std::string_view {
                          switch (j.job.state) {
                            case jobs::JobState::kQueued:
                              return "job.queued";
                            case jobs::JobState::kRunning:
                              return "job.started";
                            case jobs::JobState::kDone:
                              return "job.done";
                            case jobs::JobState::kFailed:
                              return "job.failed";
                            case jobs::JobState::kCancelled:
                              return "job.cancelled";
                          }
                          return "job.changed";
                        },
                        [](const ReactionChanged& r) -> std::string_view {
                          return r.set ? "reaction.set" : "reaction.clear";
                        },
                        [](const ImageUploaded&) -> std::string_view { return "image.uploaded"; },
                    },
                    event);
}

}  // namespace atelier::events
