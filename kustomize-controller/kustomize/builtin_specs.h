// Built-in field specs of kustomize v5.5 as YAML documents, each a map with
// one key (commonLabels, templateLabels, commonAnnotations, images,
// namespace, replicas, nameReference, varReference) holding the list of specs.
#ifndef GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_BUILTIN_SPECS_H_
#define GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_BUILTIN_SPECS_H_

namespace gitops::kustomize {

extern const char* const kCommonLabelsSpecs;
extern const char* const kTemplateLabelsSpecs;
extern const char* const kCommonAnnotationsSpecs;
extern const char* const kImagesSpecs;
extern const char* const kNamespaceSpecs;
extern const char* const kReplicasSpecs;
extern const char* const kNameReferenceSpecs;
extern const char* const kVarReferenceSpecs;

}  // namespace gitops::kustomize

#endif  // GITOPS_KUSTOMIZE_CONTROLLER_KUSTOMIZE_BUILTIN_SPECS_H_
