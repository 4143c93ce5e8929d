# The model registry: an OCI registry that built Ollama models are pushed to
# when a build's storage is "registry" (aistack/build_pod.py runs
# `ollama push $AISTACK_REGISTRY/<model>:<tag>`), and that Ollama servers pull
# from, instead of sharing the ollama-models volume.
#
# Ollama names a model host/namespace/model:tag, with exactly one namespace
# segment, and ECR does not create repositories on push: so there is one
# repository per model, all under var.model_registry_namespace, and
# AISTACK_REGISTRY is <account>.dkr.ecr.<region>.amazonaws.com/<namespace>
# (output model_registry_url). Add a name to var.model_names for a new model.
#
# Known gap: `ollama push` authenticates only with Ollama's own key-pair
# scheme, not with the registry token ECR issues, so pushing needs an OCI
# client that can log in to ECR (see README.md, "Model registry").

resource "aws_ecr_repository" "models" {
  for_each = toset(var.model_names)

  name = "${var.model_registry_namespace}/${each.key}"

  # A changed definition that keeps its version tag is rebuilt and pushed
  # under the same tag, so tags must be movable.
  image_tag_mutability = "MUTABLE"

  encryption_configuration {
    encryption_type = "AES256"
  }

  # Image scanning looks for OS and language packages; model weights have
  # none, so a scan would cost time and find nothing.
  image_scanning_configuration {
    scan_on_push = false
  }
}

# Re-pushing a tag leaves the old manifest untagged; drop those after a while.
resource "aws_ecr_lifecycle_policy" "models" {
  for_each = aws_ecr_repository.models

  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Expire untagged model manifests"
      selection = {
        tagStatus   = "untagged"
        countType   = "sinceImagePushed"
        countUnit   = "days"
        countNumber = 14
      }
      action = { type = "expire" }
    }]
  })
}
