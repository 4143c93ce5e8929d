# AWS credentials for aistack's pods, through EKS Pod Identity.
#
# Why Pod Identity rather than IRSA: the binding of a service account to a role
# lives entirely here (aws_eks_pod_identity_association), so the Kubernetes
# manifests Flux applies need no account-specific role-ARN annotation; the
# role trusts the EKS service rather than one cluster's OIDC issuer, so it
# needs no change when the cluster is replaced; and no IAM OIDC provider is
# created. The pods need an AWS SDK recent enough for the container credential
# provider (boto3 >= 1.34; aistack pins 1.44) and the eks-pod-identity-agent
# add-on (cluster.tf). Pods cannot fall back on the node's role instead: the
# EKS module (v21) limits instance metadata to one network hop, which a pod's
# own network namespace does not reach.

data "aws_iam_policy_document" "pod_identity_trust" {
  statement {
    sid     = "EksPodIdentity"
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }

    # Only Pod Identity acting for this account may assume the role.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# --- Airflow: publishes pipeline results to the outputs bucket ---------------

resource "aws_iam_role" "airflow" {
  name               = "${var.cluster_name}-airflow"
  description        = "aistack Airflow: read and write pipeline outputs in S3"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_trust.json
}

data "aws_iam_policy_document" "airflow" {
  statement {
    sid       = "ListOutputs"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.outputs.arn]
  }

  # Put for publish, Get for reading results back, Delete for a
  # failureAction "rollback" (versioning keeps what it deletes recoverable).
  statement {
    sid       = "ReadWriteOutputs"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.outputs.arn}/*"]
  }

  # SSE-KMS: writing needs a data key, reading needs Decrypt.
  statement {
    sid       = "UseOutputsKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.outputs.arn]
  }
}

resource "aws_iam_role_policy" "airflow" {
  name   = "outputs-bucket"
  role   = aws_iam_role.airflow.id
  policy = data.aws_iam_policy_document.airflow.json
}

resource "aws_eks_pod_identity_association" "airflow" {
  for_each = local.airflow_service_accounts

  cluster_name    = module.eks.cluster_name
  namespace       = each.value.namespace
  service_account = each.value.name
  role_arn        = aws_iam_role.airflow.arn
}

# --- Model builds: push to and pull from the model registry ------------------

resource "aws_iam_role" "model_builder" {
  name               = "${var.cluster_name}-model-builder"
  description        = "aistack model builds: read and write the ECR model registry"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_trust.json
}

data "aws_iam_policy_document" "model_builder" {
  # The registry login token is account-wide; ECR does not scope it.
  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  # Every repository under the namespace, so a model added to
  # var.model_names later is covered without editing this policy.
  statement {
    sid = "ReadWriteModels"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      "ecr:DescribeImages",
      "ecr:DescribeRepositories",
      "ecr:InitiateLayerUpload",
      "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload",
      "ecr:PutImage",
    ]
    resources = ["arn:${local.partition}:ecr:${var.region}:${local.account_id}:repository/${var.model_registry_namespace}/*"]
  }
}

resource "aws_iam_role_policy" "model_builder" {
  name   = "model-registry"
  role   = aws_iam_role.model_builder.id
  policy = data.aws_iam_policy_document.model_builder.json
}

resource "aws_eks_pod_identity_association" "model_builder" {
  cluster_name    = module.eks.cluster_name
  namespace       = local.model_builder_service_account.namespace
  service_account = local.model_builder_service_account.name
  role_arn        = aws_iam_role.model_builder.arn
}
